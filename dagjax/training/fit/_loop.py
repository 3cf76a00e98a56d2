"""The epoch loop: compiled multi-step functions, batch sources, callbacks.

A :class:`Loop` wraps one :class:`~dagjax.training.core._trainer.Trainer` in
compiled functions, with the train state's buffers donated:

- ``train_chunk`` runs steps ``start .. start+count`` in one ``fori_loop``
  (``count`` is an argument, so any number of steps reuses one program);
- ``train_one`` runs one step as a plain jitted function;
- ``eval_chunk`` / ``eval_one`` do the same for evaluation.

The step programs return only the new state; the logs (``metric_results``)
are a separate small program, run when a callback, the progress bar or the
epoch's end reads them, so a step carries no bookkeeping nobody reads.

Each step gathers its batch on the device, from data placed there once
(see :class:`~dagjax.training.fit._sources.Chunk`). ``steps_per_execution`` picks
between the two: an int ``k`` runs ``k`` steps per call (1: the plain step);
``"auto"`` fuses steps unless a callback needs every batch, or the backend is
the CPU and the model holds a convolution (XLA:CPU runs a convolution's
weight gradient inside a loop 2-60x slower than in a plain jitted step; see
PERF_NOTES) or is big enough that the loop's per-op cost outweighs the
per-call cost it saves (:func:`fuses_well_on_cpu`). With ``"auto"``, an
epoch that no batch hook watches runs as one call; a watched one runs in
calls sized to take about ``_CHUNK_SECONDS`` each (the size learnt carries
over epochs and ``fit`` calls), so the progress bar moves and per-call
dispatch cost stays negligible.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from dagjax.callbacks._base import _BATCH_HOOKS, CallbackList, _overrides, log_value
from dagjax.training.core._trainer import Trainer, TrainState
from dagjax.training.fit._gc import full_collections_held_back
from dagjax.training.fit._sources import Chunk

if TYPE_CHECKING:
    from dagjax.model._functional import Model
    from dagjax.training.fit._session import _Link

_CHUNK_SECONDS = 0.25
_MAX_CHUNK = 100_000
STREAM_CHUNK = 16  # batches stacked per fused call when batches come from the host
_CPU_FUSE_MAX_OPS = 128  # forward-pass ops up to which XLA:CPU gains from fusing (fuses_well_on_cpu)


def _gather(chunk_data, idx, mask, row):
    """Batch ``row``: ``(x, y, sample_weight)``, plus its mask row when the epoch has padding."""
    x, y, sample_weight = jax.tree_util.tree_map(lambda a: a[idx[row]], chunk_data)
    return (x, y, sample_weight) if mask is None else (x, y, sample_weight, mask[row])


def _sub_jaxprs(params: dict) -> Iterator:
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                yield item.jaxpr


def _has_conv(jaxpr) -> bool:
    return any(
        eqn.primitive.name == "conv_general_dilated" or any(_has_conv(sub) for sub in _sub_jaxprs(eqn.params))
        for eqn in jaxpr.eqns
    )


def _op_count(jaxpr) -> int:
    """Primitive ops in ``jaxpr``, counting those inside nested calls rather than the calls."""
    total = 0
    for eqn in jaxpr.eqns:
        subs = list(_sub_jaxprs(eqn.params))
        total += sum(map(_op_count, subs)) if subs else 1
    return total


def _forward_jaxpr(model):
    """The model's training forward pass, traced abstractly (no compute)."""
    probes = [
        jax.ShapeDtypeStruct(tuple(8 if d is None else d for d in t.shape), t.dtype) for t in model.inputs
    ]
    forward = lambda p, s, xs: model.apply(p, s, xs, training=True, rng=jax.random.key(0))
    params, state = jax.eval_shape(lambda: model.init_weights(jax.random.key(0)))
    return jax.make_jaxpr(forward)(params, state, probes).jaxpr


def model_has_conv(model: Model) -> bool:
    """Whether the model's forward pass holds a convolution."""
    return _has_conv(_forward_jaxpr(model))


def fuses_well_on_cpu(model: Model) -> bool:
    """Whether XLA:CPU runs many steps of ``model`` faster in one loop than one step per call.

    A loop saves a per-call cost (~0.1-0.3 ms here) but XLA:CPU runs a
    loop body slower per op, and a convolution's weight gradient 2-60x
    slower, so only small convolution-free models gain (BUILD_NOTES,
    "Benchmarks": the crossover measured near ``_CPU_FUSE_MAX_OPS``).
    """
    if _layer_calls(model) > _CPU_FUSE_MAX_OPS:  # each call is an op or more: too big, no need to trace
        return False
    jaxpr = _forward_jaxpr(model)
    return not _has_conv(jaxpr) and _op_count(jaxpr) <= _CPU_FUSE_MAX_OPS


def _layer_calls(model) -> int:
    """Layer calls in the model's graph, those inside nested models included."""
    return sum(_layer_calls(node.layer) if hasattr(node.layer, "_nodes") else 1 for node in model._nodes)


class Loop:
    """Compiled step functions of one trainer, and the loops that drive them."""

    def __init__(self, model: Model, trainer: Trainer, steps_per_execution: int | str = "auto") -> None:
        check_steps_per_execution(steps_per_execution)
        self.model = model
        self.trainer = trainer
        self.steps_per_execution = steps_per_execution
        self._fused: bool | None = None  # the auto choice, made once

        def train_chunk(ts, data, idx, mask, start, count, seed):
            def body(i, ts):
                rng = jax.random.fold_in(jax.random.key(seed), ts.step)
                return trainer.train_step(ts, _gather(data, idx, mask, i), rng)[0]

            return jax.lax.fori_loop(start, start + count, body, ts)

        def train_one(ts, data, idx, mask, row, seed):
            rng = jax.random.fold_in(jax.random.key(seed), ts.step)
            return trainer.train_step(ts, _gather(data, idx, mask, row), rng)[0]

        def eval_chunk(params, state, metrics, data, idx, mask, start, count):
            def body(i, metrics):
                ts = TrainState(params, state, None, None, metrics)
                return trainer.eval_step(ts, _gather(data, idx, mask, i)).metrics

            return jax.lax.fori_loop(start, start + count, body, metrics)

        def eval_one(params, state, metrics, data, idx, mask, row):
            ts = TrainState(params, state, None, None, metrics)
            return trainer.eval_step(ts, _gather(data, idx, mask, row)).metrics

        self._train_chunk = full_collections_held_back(jax.jit(train_chunk, donate_argnums=0))
        self._train_one = full_collections_held_back(jax.jit(train_one, donate_argnums=0))
        self._eval_chunk = full_collections_held_back(jax.jit(eval_chunk, donate_argnums=2))
        self._eval_one = full_collections_held_back(jax.jit(eval_one, donate_argnums=2))
        self._results = jax.jit(
            lambda metrics: trainer.metric_results(TrainState(None, None, None, None, metrics))
        )
        self._fresh_metrics: dict | None = None  # zeroed metrics made ahead by ``prepare_reset``
        self._counts = {"train": 1, "test": 1}  # steps per fused call, learnt as calls are timed
        self._warm = {"train": False, "test": False}  # whether the fused program has run (compiled)
        self.latest: TrainState | None = None  # the newest state of an epoch that raised

    def reset_metrics(self, ts: TrainState) -> TrainState:
        """``ts`` with zeroed metrics, those made ahead by ``prepare_reset`` if any."""
        fresh, self._fresh_metrics = self._fresh_metrics, None
        return ts._replace(metrics=fresh) if fresh is not None else self.trainer.reset_metrics(ts)

    def prepare_reset(self) -> None:
        """Make the next epoch's zeroed metrics now (placing them on the device takes a few 100 us)."""
        self._fresh_metrics = self.trainer.reset_metrics(TrainState(None, None, None, None, {})).metrics

    def logs(self, metrics: dict) -> dict:
        """The running logs (device arrays) from a metric state, sorted by name."""
        return self.ordered(self._results(metrics))

    @property
    def capacity(self) -> int:
        """Batches stacked per fused call when they come from the host."""
        return STREAM_CHUNK if self.steps_per_execution == "auto" else self.steps_per_execution

    def fuse(self, per_batch_callbacks: bool) -> bool:
        """Whether to run many steps per call (see the module docstring)."""
        if self.steps_per_execution != "auto":
            return self.steps_per_execution > 1
        if per_batch_callbacks:
            return False
        if self._fused is None:
            self._fused = jax.default_backend() != "cpu" or fuses_well_on_cpu(self.model)
        return self._fused

    # ------------------------------------------------------------------ loops
    def _chunks(
        self, take: Callable, fused: bool, watched: bool, mode: str, stopping: bool = False
    ) -> Iterator[Chunk]:
        """Chunks from ``take``: one step each, ``steps_per_execution`` each, or adaptively sized.

        Adaptive sizes (``"auto"``) apply only when a batch hook watches the
        run: they are timed, which waits for each call to finish. Unwatched,
        the whole epoch goes in one call. ``stopping`` (a begin hook set the
        model's stop flag) gives one step and no more: Keras checks the flag
        after each batch, so its first batch still runs.
        """
        if stopping:
            chunk = take(1)
            if chunk is not None:
                yield chunk
            return
        if not fused:
            yield from iter(lambda: take(1), None)
            return
        if self.steps_per_execution != "auto":
            yield from iter(lambda: take(self.steps_per_execution), None)
            return
        if not watched:
            yield from iter(lambda: take(_MAX_CHUNK), None)
            return
        while (chunk := take(self._counts[mode])) is not None:
            started = time.perf_counter()
            yield chunk
            first, self._warm[mode] = not self._warm[mode], True
            self._counts[mode] = _next_count(
                self._counts[mode], chunk.count, time.perf_counter() - started, first
            )

    @staticmethod
    def ordered(logs: dict) -> dict:
        """Logs sorted by name, as Keras's JAX backend hands them to callbacks and ``History``."""
        return dict(sorted(logs.items()))

    def _floats(self, metrics: dict) -> dict:
        """The logs as Python floats (arrays for vector metrics); on the host when all are losses."""
        logs = self.trainer.host_results(metrics)
        if logs is None:
            logs = jax.device_get(self._results(metrics))
        return {k: log_value(v) for k, v in self.ordered(logs).items()}

    def train_epoch(
        self,
        ts: TrainState,
        take: Callable,
        fused: bool,
        seed: int,
        callbacks: CallbackList,
        link: _Link,
        ahead: Callable | None = None,
    ) -> tuple[TrainState, int, dict | None]:
        """One epoch of training (``seed`` feeds Dropout): the new state, the steps run, the epoch's logs.

        ``ahead(steps)``, if given, runs once every step is dispatched and before
        the logs are read, so host work for the next epoch overlaps this one's compute.
        The state ``ts`` is donated to the first step: if the epoch ends in an
        exception (a callback's, an interrupt), ``self.latest`` holds the newest one.
        """
        per_batch = callbacks.needs_every_batch("train")
        watched = per_batch or has_batch_hooks(callbacks, "train")
        before = per_batch and any(map(callbacks.reads_model_in, ("on_train_batch_begin", "on_batch_begin")))
        done = 0
        stopping = bool(getattr(self.model, "stop_training", False))
        try:
            for chunk in self._chunks(take, fused, watched, "train", stopping):
                if before:
                    link.publish(ts)
                if watched:
                    callbacks.on_train_batch_begin(done)
                if before:
                    ts = link.absorb(ts)
                where = (chunk.data, chunk.idx, chunk.mask, chunk.start)
                if fused:
                    ts = self._train_chunk(ts, *where, chunk.count, seed)
                else:
                    ts = self._train_one(ts, *where, seed)
                done += chunk.count
                if watched:
                    logs = self.logs(ts.metrics)
                    if fused and self.steps_per_execution == "auto":
                        jax.block_until_ready(logs)  # the call is timed to size the next one
                    if per_batch:
                        link.publish(ts)
                    callbacks.on_train_batch_end(done - 1, logs)
                    if per_batch:
                        ts = link.absorb(ts)
                if getattr(self.model, "stop_training", False):
                    break
        except BaseException:
            self.latest = ts
            raise
        if ahead is not None and done:
            ahead(done)
        return ts, done, self._floats(ts.metrics) if done else None

    def evaluate(self, ts: TrainState, take: Callable, fused: bool, callbacks: CallbackList) -> dict:
        """Losses and metrics over every batch ``take`` gives, as Python floats."""
        metrics = self.trainer.reset_metrics(ts).metrics
        watched = has_batch_hooks(callbacks, "test")
        done = 0
        stopping = bool(getattr(self.model, "stop_evaluating", False))
        for chunk in self._chunks(take, fused, watched, "test", stopping):
            if watched:
                callbacks.on_test_batch_begin(done)
            args = (ts.params, ts.state, metrics, chunk.data, chunk.idx, chunk.mask, chunk.start)
            metrics = self._eval_chunk(*args, chunk.count) if fused else self._eval_one(*args)
            done += chunk.count
            if watched:
                logs = self.logs(metrics)
                if fused and self.steps_per_execution == "auto":
                    jax.block_until_ready(logs)
                callbacks.on_test_batch_end(done - 1, logs)
            if getattr(self.model, "stop_evaluating", False):
                break
        if not done:
            raise ValueError("The evaluation data set is empty.")
        return self._floats(metrics)


def has_batch_hooks(callbacks: CallbackList, mode: str) -> bool:
    """Whether any callback overrides a ``mode`` batch hook (chunk-safe ones, like the progress bar, too)."""
    return any(_overrides(c, hook) for c in callbacks.callbacks for hook in _BATCH_HOOKS[mode])


def owned_trees(owner: Any, names: tuple[str, ...]) -> tuple:
    """``owner``'s pytrees ``names``, each copied unless nothing but ``owner`` references it.

    A train step donates its input buffers. When ``owner`` (the model) is the
    only holder of a tree's containers and arrays, donating them in place is
    invisible to the user and saves a copy of the parameters and the
    optimizer state (3x the parameters for Adam); when anything else holds a
    reference (a user's variable, a callback), the tree is copied so that
    reference stays valid. References are counted with ``sys.getrefcount``,
    against the count measured on a probe held the same way.
    """
    out = []
    for name in names:
        tree = getattr(owner, name)
        unshared = all(count <= _UNSHARED_REFS for count in _refcounts(tree))
        out.append(tree if unshared else jax.device_put(tree, may_alias=False))
    return tuple(out)


def _refcounts(node: Any) -> Iterator[int]:
    """Reference counts of ``node`` and of every container and array under it, as seen from here."""
    if isinstance(node, (dict, list, tuple, jax.Array)):
        yield sys.getrefcount(node)
    if isinstance(node, (dict, list, tuple)):
        for child in node.values() if isinstance(node, dict) else node:
            yield from _refcounts(child)


def _calibrate() -> int:
    """What ``owned_trees`` counts on a tree only its owner holds (0, i.e. always copy, if not uniform)."""

    class Owner:
        """The probe tree's only holder, as the model is the only holder of its own trees."""

        tree = {"child": ({"leaf": {}},)}

    tree = Owner.tree
    counts = set(_refcounts(tree))
    return counts.pop() if len(counts) == 1 else 0


_UNSHARED_REFS = _calibrate()


def _next_count(count: int, ran: int, seconds: float, first: bool) -> int:
    """Steps for the next fused call, aiming at ``_CHUNK_SECONDS`` per call (the first call compiles)."""
    if first or seconds <= 0:
        return min(2 * count, _MAX_CHUNK)
    target = max(1, int(_CHUNK_SECONDS * max(ran, 1) / seconds))
    return int(min(target, 4 * count, _MAX_CHUNK))


class Predictor:
    """``predict`` over batches: one jitted inference step, outputs read back once at the end."""

    def __init__(self, model: Model) -> None:
        self.model = model
        forward = jax.jit(lambda params, state, x: model.apply(params, state, x, training=False)[0])
        self._predict = full_collections_held_back(forward)

    def __call__(
        self, params: dict, state: dict, batches: Iterator, batch_size: int, callbacks: CallbackList
    ) -> Any:
        """Outputs of every batch (padding rows dropped) as numpy, in the model's output structure."""
        outputs = []
        size = batch_size
        for step, x in enumerate(batches):
            callbacks.on_predict_batch_begin(step)
            n = jax.tree_util.tree_leaves(x)[0].shape[0]
            size = max(size, n)
            wrap = np.arange(size) % n
            out = self._predict(params, state, jax.tree_util.tree_map(lambda v, wrap=wrap: v[wrap], x))
            if n < size:  # a padded batch: its padding rows go before anyone sees them, as in Keras
                out = jax.tree_util.tree_map(lambda v, n=n: v[:n], out)
            outputs.append(out)
            callbacks.on_predict_batch_end(step, {"outputs": out})
            if getattr(self.model, "stop_predicting", False):
                break
        if not outputs:
            raise ValueError("The data set given to predict is empty.")
        return jax.tree_util.tree_map(lambda *vs: np.concatenate(vs), *jax.device_get(outputs))


def check_steps_per_execution(value: Any) -> None:
    """Raise unless ``value`` is ``"auto"`` or a positive int (a bool is refused)."""
    if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f'steps_per_execution must be "auto" or a positive int, got {value!r}.')


def warn_out_of_data() -> None:
    """Warn that ``fit`` stops early: the data gave no batch at an epoch's start (a spent generator)."""
    warnings.warn(
        "The data ran out before the epoch's first step; training stops here. Pass a re-iterable data set, "
        "or set steps_per_epoch to what one pass of the generator gives.",
        UserWarning,
        stacklevel=3,
    )
