"""Variants of the hand-written JAX step trained side by side, their epochs alternating in one process.

Shared by the A/B scripts (``compiler_options.py``, ``dense_weight_grad.py``):
each variant trains the same workload from the same state, and their epochs
take turns, so load from other jobs lands on all of them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from workloads import Workload, epoch_order


def epoch_program(step: Callable, variant: str) -> Callable:
    """The jitted program a variant runs: one step (``loop``) or a ``lax.scan`` over an epoch (``scan``)."""
    if variant == "scan":
        return jax.jit(lambda c, x, y, o: jax.lax.scan(lambda c, i: step(c, x, y, i), c, o), donate_argnums=0)
    return jax.jit(lambda c, x, y, o, i: step(c, x, y, o[i]), donate_argnums=0)


def example_args(variant: str, order: jax.Array) -> tuple:
    """The arguments after ``(carry, x, y)`` that ``epoch_program`` takes, for ``lower``."""
    return (order,) if variant == "scan" else (order, 0)


def alternate(compiled: dict, carries: dict, data: tuple, workload: Workload, variant: str, rounds: int,
              rng: np.random.Generator) -> dict[str, list[float]]:
    """Train each compiled variant ``rounds`` epochs, taking turns; each epoch's ms/step, warm-up dropped."""
    steps = workload.steps

    def epoch(name: str, order: jax.Array) -> float:
        started = time.perf_counter()
        if variant == "scan":
            carries[name], _ = compiled[name](carries[name], *data, order)
        else:
            for i in range(steps):
                carries[name], _ = compiled[name](carries[name], *data, order, i)
        jax.block_until_ready(carries[name])
        return time.perf_counter() - started

    seconds: dict[str, list[float]] = {name: [] for name in compiled}
    for r in range(rounds):
        order = jnp.asarray(epoch_order(steps, workload.batch_size, rng))
        for name in list(compiled) if r % 2 else list(compiled)[::-1]:
            seconds[name].append(epoch(name, order))
    return {name: [s / steps * 1e3 for s in taken[2:]] for name, taken in seconds.items()}  # 2 rounds warm up


def summary(ms_per_step: list[float]) -> str:
    """``median X ms/step, best Y``."""
    return f"median {np.median(ms_per_step):.3f} ms/step, best {min(ms_per_step):.3f}"
