"""The epoch loop: compiled multi-step functions, batch sources, callbacks.

A :class:`Loop` wraps one :class:`~dagjax.training._step.Trainer` in
compiled functions, with the train state's buffers donated:

- ``train_chunk`` runs steps ``start .. start+count`` in one ``fori_loop``
  (``count`` is an argument, so any number of steps reuses one program);
- ``train_one`` runs one step as a plain jitted function;
- ``eval_chunk`` / ``eval_one`` do the same for evaluation.

Each step gathers its batch on the device, from data placed there once
(see :class:`~dagjax.training._data.Chunk`). ``steps_per_execution`` picks
between the two: an int ``k`` runs ``k`` steps per call (1: the plain step);
``"auto"`` fuses steps unless a callback needs every batch, or the backend is
the CPU and the model holds a convolution (XLA:CPU runs a convolution's
weight gradient inside a loop 2-60x slower than in a plain jitted step; see
PERF_NOTES). Fused calls are sized to take about ``_CHUNK_SECONDS`` each, so
the progress bar moves and per-call dispatch cost stays negligible.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np

from dagjax.training._data import Chunk
from dagjax.training._step import Trainer, TrainState

_CHUNK_SECONDS = 0.25
_MAX_CHUNK = 100_000
STREAM_CHUNK = 16  # batches stacked per fused call when batches come from the host


def _gather(chunk_data, idx, mask, row):
    x, y, sample_weight = jax.tree_util.tree_map(lambda a: a[idx[row]], chunk_data)
    return x, y, sample_weight, mask[row]


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


def model_has_conv(model) -> bool:
    """Whether the model's forward pass holds a convolution (traced abstractly, no compute)."""
    probes = [
        jax.ShapeDtypeStruct(tuple(8 if d is None else d for d in t.shape), t.dtype) for t in model.inputs
    ]
    forward = lambda p, s, xs: model.apply(p, s, xs, training=True, rng=jax.random.key(0))
    params, state = jax.eval_shape(lambda: model.init_weights(jax.random.key(0)))
    return _has_conv(jax.make_jaxpr(forward)(params, state, probes).jaxpr)


class Loop:
    """Compiled step functions of one trainer, and the loops that drive them."""

    def __init__(self, model, trainer: Trainer, steps_per_execution: int | str = "auto"):
        check_steps_per_execution(steps_per_execution)
        self.model = model
        self.trainer = trainer
        self.steps_per_execution = steps_per_execution
        self._conv_on_cpu: bool | None = None

        def train_chunk(ts, data, idx, mask, start, count, seed):
            def body(i, ts):
                rng = jax.random.fold_in(jax.random.key(seed), ts.step)
                ts, _ = trainer.train_step(ts, _gather(data, idx, mask, i), rng)
                return ts

            ts = jax.lax.fori_loop(start, start + count, body, ts)
            return ts, trainer.metric_results(ts)

        def train_one(ts, data, idx, mask, row, seed):
            rng = jax.random.fold_in(jax.random.key(seed), ts.step)
            return trainer.train_step(ts, _gather(data, idx, mask, row), rng)

        def eval_chunk(params, state, metrics, data, idx, mask, start, count):
            def body(i, metrics):
                ts = TrainState(params, state, None, None, metrics)
                return trainer.eval_step(ts, _gather(data, idx, mask, i)).metrics

            metrics = jax.lax.fori_loop(start, start + count, body, metrics)
            return metrics, trainer.metric_results(TrainState(params, state, None, None, metrics))

        def eval_one(params, state, metrics, data, idx, mask, row):
            ts = TrainState(params, state, None, None, metrics)
            metrics = trainer.eval_step(ts, _gather(data, idx, mask, row)).metrics
            return metrics, trainer.metric_results(ts._replace(metrics=metrics))

        self._train_chunk = jax.jit(train_chunk, donate_argnums=0)
        self._train_one = jax.jit(train_one, donate_argnums=0)
        self._eval_chunk = jax.jit(eval_chunk, donate_argnums=2)
        self._eval_one = jax.jit(eval_one, donate_argnums=2)

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
        if self._conv_on_cpu is None:
            self._conv_on_cpu = jax.default_backend() == "cpu" and model_has_conv(self.model)
        return not self._conv_on_cpu

    # ------------------------------------------------------------------ loops
    def _chunks(self, take: Callable, fused: bool) -> Iterator[Chunk]:
        """Chunks from ``take``, sized by ``steps_per_execution`` or adaptively (fused calls are timed)."""
        fixed = None if self.steps_per_execution == "auto" else self.steps_per_execution
        count = fixed or 1
        calls = 0
        while (chunk := take(count if fused else 1)) is not None:
            started = time.perf_counter()
            yield chunk
            calls += 1
            if fused and fixed is None:
                count = _next_count(count, chunk.count, time.perf_counter() - started, first=calls == 1)

    @staticmethod
    def ordered(logs: dict) -> dict:
        """Logs sorted by name, as Keras's JAX backend hands them to callbacks and ``History``."""
        return dict(sorted(logs.items()))

    def train_epoch(self, ts: TrainState, take: Callable, fused: bool, seed: int, callbacks, link):
        """One epoch of training (``seed`` feeds Dropout): the new state, the steps run, the epoch's logs."""
        per_batch = callbacks.needs_every_batch("train")
        before = per_batch and any(map(callbacks.reads_model_in, ("on_train_batch_begin", "on_batch_begin")))
        done = 0
        logs = None
        for chunk in self._chunks(take, fused):
            if before:
                link.publish(ts)
            callbacks.on_train_batch_begin(done)
            if before:
                ts = link.absorb(ts)
            if fused:
                ts, logs = self._train_chunk(
                    ts, chunk.data, chunk.idx, chunk.mask, chunk.start, chunk.count, seed
                )
                jax.block_until_ready(logs)
            else:
                ts, logs = self._train_one(ts, chunk.data, chunk.idx, chunk.mask, chunk.start, seed)
            done += chunk.count
            if per_batch:
                link.publish(ts)
            callbacks.on_train_batch_end(done - 1, self.ordered(logs))
            if per_batch:
                ts = link.absorb(ts)
            if getattr(self.model, "stop_training", False):
                break
        return (
            ts,
            done,
            None if logs is None else {k: float(v) for k, v in jax.device_get(self.ordered(logs)).items()},
        )

    def evaluate(self, ts: TrainState, take: Callable, fused: bool, callbacks) -> dict:
        """Losses and metrics over every batch ``take`` gives, as Python floats."""
        metrics = self.trainer.reset_metrics(ts).metrics
        done = 0
        logs = None
        for chunk in self._chunks(take, fused):
            callbacks.on_test_batch_begin(done)
            args = (ts.params, ts.state, metrics, chunk.data, chunk.idx, chunk.mask, chunk.start)
            if fused:
                metrics, logs = self._eval_chunk(*args, chunk.count)
                jax.block_until_ready(logs)
            else:
                metrics, logs = self._eval_one(*args)
            done += chunk.count
            callbacks.on_test_batch_end(done - 1, self.ordered(logs))
        if logs is None:
            raise ValueError("The evaluation data set is empty.")
        return {k: float(v) for k, v in jax.device_get(self.ordered(logs)).items()}


def _next_count(count: int, ran: int, seconds: float, first: bool) -> int:
    """Steps for the next fused call, aiming at ``_CHUNK_SECONDS`` per call (the first call compiles)."""
    if first or seconds <= 0:
        return min(2 * count, _MAX_CHUNK)
    target = max(1, int(_CHUNK_SECONDS * max(ran, 1) / seconds))
    return int(min(target, 4 * count, _MAX_CHUNK))


class Predictor:
    """``predict`` over batches: one jitted inference step, outputs read back once at the end."""

    def __init__(self, model):
        self._predict = jax.jit(lambda params, state, x: model.apply(params, state, x, training=False)[0])

    def __call__(self, params, state, batches: Iterator, batch_size: int, callbacks) -> Any:
        """Outputs of every batch (padding rows dropped) as numpy, in the model's output structure."""
        outputs, sizes = [], []
        size = batch_size
        for step, x in enumerate(batches):
            callbacks.on_predict_batch_begin(step)
            n = jax.tree_util.tree_leaves(x)[0].shape[0]
            size = max(size, n)
            wrap = np.arange(size) % n
            out = self._predict(params, state, jax.tree_util.tree_map(lambda v, wrap=wrap: v[wrap], x))
            outputs.append(out)
            sizes.append(n)
            callbacks.on_predict_batch_end(step, {"outputs": out})
        if not outputs:
            raise ValueError("The data set given to predict is empty.")
        host = jax.device_get(outputs)
        trimmed = [jax.tree_util.tree_map(lambda v, n=n: v[:n], out) for out, n in zip(host, sizes)]
        return jax.tree_util.tree_map(lambda *vs: np.concatenate(vs), *trimmed)


def check_steps_per_execution(value: Any) -> None:
    if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f'steps_per_execution must be "auto" or a positive int, got {value!r}.')


def warn_out_of_data() -> None:
    warnings.warn(
        "The data ran out before the epoch's first step; training stops here. Pass a re-iterable data set, "
        "or set steps_per_epoch to what one pass of the generator gives.",
        UserWarning,
        stacklevel=3,
    )
