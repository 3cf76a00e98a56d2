"""A recurrent layer's loop over time, lowered as ``lax.scan`` or unrolled, as the picker chooses.

A scan compiles its body once and runs it in an XLA while loop; unrolled, every
step is its own ops in one straight program, which XLA may schedule and fuse
across steps (and which takes longer to compile). Both compute the same
thing; for short, fixed lengths (at most :data:`MAX_UNROLLED_STEPS`) the
picker (``_lowering``) decides, measuring where it measures; ``"scan"`` is
the default and the reference (the off switch's).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers import _lowering

MAX_UNROLLED_STEPS = 32  # longer sequences are always scanned: an unrolled program grows with the length
Body = Callable[[Any, Any, Any], tuple]  # (consts, carry, x_t) -> (carry, y_t or None)


def unrolled_scan(step: Callable, carry: Any, xs: Any) -> tuple:
    """``lax.scan(step, carry, xs)`` written out step by step (a Python loop over the leading axis)."""
    length = jax.tree_util.tree_leaves(xs)[0].shape[0]
    ys = []
    for t in range(length):
        carry, y = step(carry, jax.tree_util.tree_map(lambda a, t=t: a[t], xs))
        ys.append(y)
    return carry, jax.tree_util.tree_map(lambda *y: jnp.stack(y), *ys)


def time_loop(layer: Any, op: str, body: Body, consts: Any, carry: Any, xs: Any) -> tuple:
    """``lax.scan(partial(body, consts), carry, xs)`` for ``layer``, scanned or unrolled as the picker
    chooses for the signature ``op`` and the arrays' shapes. ``body`` must reach the arrays it uses
    through ``consts`` (the weights, dropout masks): a measured candidate runs apart from this trace.
    """
    leaves, tree = jax.tree_util.tree_flatten((consts, carry, xs))
    length = jax.tree_util.tree_leaves(xs)[0].shape[0]

    def lowered(loop: Callable) -> Callable:
        def run(*arrays: Any) -> tuple:
            consts, carry, xs = jax.tree_util.tree_unflatten(tree, arrays)
            return loop(functools.partial(body, consts), carry, xs)

        return run

    candidates = {"scan": lowered(jax.lax.scan)}
    if isinstance(length, int) and 0 < length <= MAX_UNROLLED_STEPS:
        candidates["unrolled"] = lowered(unrolled_scan)
    return _lowering.lower(layer, op, candidates, tuple(leaves), default="scan", reference="scan")
