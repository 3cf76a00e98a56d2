"""What the lowering measurement adds to a first ``fit``: the cnn_full workload, cache empty.

    cd benchmarks && PYTHONPATH=<checkout> ../.venv/bin/python measure_cost.py [on|off] [cnn_full|lstm]

One epoch of 10 steps at batch 64 (of cnn_full, or of an LSTM of 32 units
over 8 steps of 16 features) with ``dagjax.config.lowering.measure`` on
(or off: the same fit paying nothing), the decisions cache in a fresh
directory. Prints the fit's wall and CPU seconds (CPU seconds are steadier on
a shared machine), the seconds spent inside the measurements
(``_lowering.timed``, the loop probe's included), XLA compiles and their
seconds, how many times each program was compiled, and the choices (the
``dagjax`` log's lines give each measurement's timings and the loop probe's answer).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections import Counter

import jax
import numpy as np

import dagjax as dj
from dagjax.layers import _lowering

compiles = {"count": 0, "seconds": 0.0}
programs: Counter = Counter()  # compiles per program name: fit's steps should be compiled once each


def on_event(event: str, seconds: float, fun_name: str = "", **_: object) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        compiles["count"] += 1
        compiles["seconds"] += seconds
        programs[fun_name] += 1


def build(workload: str) -> tuple[dj.Model, tuple]:
    """The model and one sample's shape."""
    layers = dj.layers
    if workload == "lstm":
        x = dj.Input(shape=(8, 16), name="sequence")
        return dj.Model(x, layers.Dense(10, activation="softmax")(layers.LSTM(32)(x))), (8, 16)
    x = dj.Input(shape=(32, 32, 3), name="image")
    h = layers.BatchNormalization()(layers.Conv2D(32, 3)(x))
    h = layers.BatchNormalization()(layers.SeparableConv2D(64, 3)(h))
    h = layers.MaxPooling2D()(h)
    h = layers.BatchNormalization()(layers.SeparableConv2D(128, 3)(h))
    h = layers.GlobalAveragePooling2D()(h)
    return dj.Model(x, layers.Dense(10, activation="softmax", name="probs")(h)), (32, 32, 3)


def main(measure: bool, workload: str) -> None:
    logging.basicConfig(format="  %(message)s")  # the decisions and their timings, as dagjax logs them
    logging.getLogger("dagjax").setLevel(logging.INFO)
    jax.monitoring.register_event_duration_secs_listener(on_event)
    spent, depth = [0.0], [0]
    timed = _lowering.timed

    def timed_and_counted(runs):  # the layers' measurements nest in the loop probe's: count the outer
        start, depth[0] = time.perf_counter(), depth[0] + 1
        try:
            return timed(runs)
        finally:
            depth[0] -= 1
            took = time.perf_counter() - start
            spent[0] += took if depth[0] == 0 else 0.0
            print(f"  measured {'/'.join(runs)} in {took:.2f} s{' (nested ones included)' * (not depth[0])}")

    _lowering.timed = timed_and_counted  # the loop probe reads it from there at call time too
    from dagjax.training.fit import _fuse_probe

    _fuse_probe.timed = timed_and_counted
    dj.config.lowering.cache_dir = tempfile.mkdtemp()
    dj.config.lowering.measure = measure
    model, sample = build(workload)
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((640, *sample)).astype("float32")
    labels = rng.integers(0, 10, 640)
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(images, labels, batch_size=64, epochs=1, verbose=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    nested = spent[0]
    print(f"measure {'on' if measure else 'off'}: fit {wall:.1f} s wall, {cpu:.1f} s CPU; measuring "
          f"{nested:.1f} s wall; {compiles['count']} compiles, {compiles['seconds']:.1f} s")
    print("  compiled:", dict(programs))
    print("  choices:", {k: sorted(set(v.values())) for k, v in dj.config.lowering_choices(model).items()})


if __name__ == "__main__":
    main("off" not in sys.argv[1:], "lstm" if "lstm" in sys.argv[1:] else "cnn_full")
