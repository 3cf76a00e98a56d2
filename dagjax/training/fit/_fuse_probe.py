"""Whether a model's train steps run faster fused in one loop than one per call: timed, not guessed.

XLA:CPU runs a convolution's weight gradient far slower inside a loop
(PERF_NOTES), but a convolution lowered to matmuls (``dagjax.config.lowering``)
may loop well, so for a convolutional model ``_perf.fuses_well`` asks
:func:`loops_faster`, which times a few steps both ways once per model,
data shapes and backend and keeps the answer with the lowering decisions.

What it times is fit's own two programs where it can (:func:`program_runs`:
data held on the device), on a copy of the train state: compiling them is
most of the probe's cost, and fit then runs the form it keeps without
compiling it again. Where fit's blocks of data depend on the choice (batches
fed from the host), it times train-like steps of its own (:func:`step_runs`).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.layers import _lowering
from dagjax.layers._lowering import backend_key, remember, remembered, timed
from dagjax.layers._race import compiled_run
from dagjax.model import Model
from dagjax.training.core import TrainState
from dagjax.training.fit._batching import Chunk

log = logging.getLogger("dagjax")

_PROBE_STEPS = 4  # steps timed in one loop against as many calls: 2 read a loop's gain short (BUILD_NOTES)
_FUSE_MARGIN = 0.9  # the loop must take at most this fraction of the calls' time: never a slower form


Runs = dict[str, Callable[[], Any]]  # "fused" and "single": each runs ``_PROBE_STEPS`` steps once


def loops_faster(
    model: Model, forward: str, sample_shapes: list | None, batch_size: int | None,
    runs: Callable[[], Runs | None] | None = None,
) -> bool:
    """Whether ``_PROBE_STEPS`` training steps of ``model`` (forward, backward, an update) run clearly
    faster as one loop than as as many calls, timed once and kept with the lowering decisions under the
    ``forward`` jaxpr's hash (``dagjax.config.lowering``: its ``measure`` off, or no batch size known:
    no, as before measuring). ``runs()`` makes the runs to time (fit's own programs: :func:`program_runs`);
    without it, or when it gives None, :func:`step_runs` on zero weights and the data's shapes. Any
    failure: no.
    """
    settings = _lowering.settings  # read when used: it may be replaced
    if not (settings.measure and settings.enabled and batch_size and sample_shapes):
        return False
    digest = hashlib.sha256(forward.encode()).hexdigest()[:16]
    key = f"{backend_key()}|fuse steps|{batch_size} {sample_shapes}|{digest}"
    known = remembered(key)
    if known is None:
        trapped: list[str] = []
        try:
            made = (runs and runs()) or step_runs(model, sample_shapes, batch_size)
            # "single" first: compiling it makes the layers' lowering decisions the loop would have
            fused = _unless_trapped(made["fused"], model, trapped)
            timings = timed({"single": made["single"], "fused": fused})
        except Exception as err:  # noqa: BLE001 -- a heuristic never fails a fit
            log.debug("dagjax: one step per call: timing %s's loop failed (%s)", model.name, err)
            return False
        if trapped:
            known = "single"
            log.info("dagjax: %s: one step per call, the loop not timed: %s trains XLA's convolution, "
                     "whose weight gradient runs many times slower in a loop here", model.name, trapped[0])
        elif len(timings) < 2:
            return False
        else:
            known = "fused" if timings["fused"] < _FUSE_MARGIN * timings["single"] else "single"
            log.info("dagjax: %s: %d steps take %.1f ms in one loop, %.1f ms as calls: %s", model.name,
                     _PROBE_STEPS, timings["fused"] * 1e3, timings["single"] * 1e3, known)
        remember(key, known)
    return known == "fused"


class _LoopTrapped(Exception):
    """The fused run is not worth running: a trained convolution stays XLA's (``_unless_trapped``)."""


def _unless_trapped(run: Callable[[], Any], model: Model, trapped: list) -> Callable[[], Any]:
    """``run``, unless a layer of ``model`` that trains decided on XLA's convolution (its name is put in
    ``trapped`` and every run raises, so the race leaves the loop out, neither compiled nor run).

    On XLA:CPU a convolution's weight gradient inside a loop runs 2-60x slower than in a step of its
    own (PERF_NOTES): the probe's loop then took 20-115 s where the calls took 0.3-1.3 s (BUILD_NOTES),
    a first ``fit`` spent in the stopwatch. The layers' decisions are made when the first program is
    traced, so this is asked on the loop's first run, after the single step's.
    """
    verdict: list = []

    def checked() -> Any:
        if not verdict:
            verdict.append(_trained_xla_convolution(model.layers))
            if verdict[0]:
                trapped.append(verdict[0])
        if verdict[0]:
            raise _LoopTrapped(verdict[0])
        return run()

    return checked


def _trained_xla_convolution(layers: Any) -> str | None:
    """The name of a trainable layer (nested models' too) whose traced lowering was XLA's convolution."""
    for layer in layers:
        lowered = getattr(layer, "lowered", None) or {}
        if getattr(layer, "trainable", True) and _lowering.REFERENCE in lowered.values():
            return layer.name
        found = _trained_xla_convolution(getattr(layer, "sublayers", {}).values())
        if found:
            return found
    return None


def step_runs(model: Model, sample_shapes: list, batch_size: int) -> dict[str, Callable[[], Any]]:
    """``{"fused": ..., "single": ...}``: ``_PROBE_STEPS`` train-like steps, as a loop and as calls
    (the first run of each compiles it and runs nothing, as ``_race`` expects)."""
    abstract = jax.eval_shape(lambda: model.init_weights(jax.random.key(0)))
    params, state = jax.tree_util.tree_map(lambda a: np.zeros(a.shape, a.dtype), abstract)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((batch_size, *shape)).astype(t.dtype) if np.issubdtype(t.dtype, np.floating)
          else np.zeros((batch_size, *shape), t.dtype) for shape, t in zip(sample_shapes, model.inputs)]

    def step(params: Any, xs: list) -> Any:
        def loss(p: Any) -> Any:
            out, _ = model.apply(p, state, xs, training=True, rng=jax.random.key(0))
            return sum(jnp.sum(jnp.square(o.astype(jnp.float32))) for o in jax.tree_util.tree_leaves(out))

        return jax.tree_util.tree_map(lambda p, g: p - 1e-9 * g, params, jax.grad(loss)(params))

    def loop(params: Any, xs: list) -> Any:
        return jax.lax.fori_loop(0, _PROBE_STEPS, lambda i, p: step(p, xs), params)

    one: list = []  # the step, compiled by the first run of "single", which runs nothing

    def calls() -> Any:
        if not one:
            one.append(jax.jit(step).lower(params, xs).compile())
            return None
        p = params
        for _ in range(_PROBE_STEPS):
            p = one[0](p, xs)
        return jax.block_until_ready(p)

    return {"fused": compiled_run(loop, lambda: (params, xs)), "single": calls}


def program_runs(one: Callable, many: Callable, ts: TrainState, chunk: Chunk, seed: int) -> Runs:
    """``{"fused": ..., "single": ...}``: ``_PROBE_STEPS`` steps of fit's own programs, ``many`` (the
    fused loop: ``ts, data, idx, mask, start, count, seed``) called once and ``one`` (one step: ``ts,
    data, idx, mask, row, seed``) called as many times, from ``chunk``'s first batch, with the arguments
    fit's first call passes. ``ts`` is the probe's own copy of the train state: the programs may donate
    it, so each call's new state is the next one's. The first run of each compiles its program ahead
    of time and runs nothing (as ``_race`` expects); jit keeps it for fit's own call of that form.
    """
    held = [ts]
    data, idx, mask, start = chunk.data, chunk.idx, chunk.mask, chunk.start

    def fused(ts: TrainState, _: int) -> tuple:
        return ts, data, idx, mask, start, _PROBE_STEPS, seed

    def single(ts: TrainState, i: int) -> tuple:
        return ts, data, idx, mask, start + i, seed

    return {"fused": _calls(many, fused, 1, held), "single": _calls(one, single, _PROBE_STEPS, held)}


def _calls(program: Callable, arguments: Callable[[Any, int], tuple], count: int, held: list) -> Callable:
    """A run of ``count`` calls ``program(*arguments(state, i))``, the state ``held[0]`` passed on from
    call to call; the first run compiles ``program`` for those arguments and runs nothing."""
    compiled: list = []

    def run() -> Any:
        if not compiled:
            # unwrapped down to the jitted function (``_perf.dispatching`` wraps it), whose cache keeps it
            jitted = inspect.unwrap(program, stop=lambda fn: hasattr(fn, "trace"))
            compiled.append(jitted.trace(*arguments(held[0], 0)).lower().compile())
            return None
        for i in range(count):
            held[0] = program(*arguments(held[0], i))
        return jax.block_until_ready(held[0])

    return run
