"""Sweep of the lowering candidates' forward + backward over convolution shapes, on this backend.

    cd benchmarks && PYTHONPATH=.. ../.venv/bin/python lowering_rules.py [depthwise|conv]

For each shape, every candidate is raced as the picker races them (``_race``,
the same forward + backward runs); prints ms per candidate and the winner, and
at the end how often each candidate won. It is the evidence for a rule that
decides without measuring (BUILD_NOTES, "Lowering: what the measuring costs").
"""

from __future__ import annotations

import collections
import itertools
import sys

import jax

from dagjax.layers._conv_lowerings import CONV_LOWERINGS, explicit_padding
from dagjax.layers._depthwise import depthwise_conv_grouped, depthwise_conv_shifted
from dagjax.layers._lowering import _forward_backward
from dagjax.layers._race import race

BATCH = 32


def depthwise_cases():
    for size, channels, k, s in itertools.product((8, 16, 32), (8, 32, 128), (3, 5), (1, 2)):
        geometry = ((s, s), "same", (1, 1), "channels_last")
        candidates = {
            "xla": lambda x, w, g=geometry: depthwise_conv_grouped(x, w, *g),
            "shifted": lambda x, w, g=geometry: depthwise_conv_shifted(x, w, *g),
        }
        shapes = ((BATCH, size, size, channels), (k, k, channels, 1))
        yield f"depthwise {size}x{size}x{channels} k{k} s{s}", candidates, shapes


def conv_cases():
    for size, cin, cout, s in itertools.product((8, 16, 32), (3, 32, 128), (32, 128), (1, 2)):
        pads = explicit_padding("same", (size, size), (3, 3), (s, s), (1, 1))
        candidates = {
            name: lambda x, w, fn=fn, s=s, pads=pads: fn(x, w, (s, s), pads, (1, 1), 1)
            for name, fn in CONV_LOWERINGS.items()
        }
        shapes = ((BATCH, size, size, cin), (3, 3, cin, cout))
        yield f"conv {size}x{size}x{cin}->{cout} s{s}", candidates, shapes


def main(kind: str) -> None:
    wins: collections.Counter = collections.Counter()
    cases = depthwise_cases() if kind == "depthwise" else conv_cases()
    print(f"{jax.default_backend()} {jax.devices()[0].device_kind}, jax {jax.__version__}, batch {BATCH}")
    for label, candidates, shapes in cases:
        example = tuple(jax.ShapeDtypeStruct(s, "float32") for s in shapes)
        timings = race(_forward_backward(candidates, example), 0.3)
        best = min(timings, key=timings.get)
        wins[best] += 1
        ms = ", ".join(f"{n} {t * 1e3:.2f}" for n, t in sorted(timings.items(), key=lambda i: i[1]))
        print(f"{label:36s} {best:8s} ({ms} ms)", flush=True)
    print("wins:", dict(wins))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "depthwise")
