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
(see :class:`~dagjax.training.fit._batching.Chunk`). ``steps_per_execution`` picks
between the two: an int ``k`` runs ``k`` steps per call (1: the plain step);
``"auto"`` fuses steps unless a callback needs every batch, or the backend is
``_perf.fuses_well`` says one step per call is faster for this model on this
backend (or its ``fuse_steps`` switch is off). With ``"auto"``, an
epoch that no batch hook watches runs as one call; a watched one runs in
calls sized to take about ``_CHUNK_SECONDS`` each (the size learnt carries
over epochs and ``fit`` calls), so the progress bar moves and per-call
dispatch cost stays negligible.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from dagjax.training.core import Trainer, TrainState, gather, step_rng
from dagjax.training.fit import _perf
from dagjax.training.fit._batching import Chunk
from dagjax.training.fit._distributed import pin_metrics, pin_train_state, split_batch
from dagjax.training.fit._fuse_probe import Runs, program_runs

if TYPE_CHECKING:
    from dagjax.distribution import Distribution
    from dagjax.model import Model
    from dagjax.training.fit._session import FitSession

_CHUNK_SECONDS = 0.25
_MAX_CHUNK = 100_000
STREAM_CHUNK = 16  # batches stacked per fused call when batches come from the host


def log_value(value: Any) -> Any:
    """A log as callbacks get it: a Python float, or a numpy array for a vector metric (Keras's way)."""
    return float(value) if np.ndim(value) == 0 else np.asarray(value)


class Loop:
    """Compiled step functions of one trainer, and the loops that drive them."""

    def __init__(
        self,
        model: Model,
        trainer: Trainer,
        steps_per_execution: int | str = "auto",
        distribution: Distribution | None = None,
    ) -> None:
        """``distribution``: the mesh the steps run on (see ``_distributed``), None for one device."""
        check_steps_per_execution(steps_per_execution)
        self.model = model
        self.trainer = trainer
        self.steps_per_execution = steps_per_execution
        self._fused: bool | None = None  # the auto choice, made once

        def train_one(ts, data, idx, mask, row, seed):
            batch = split_batch(distribution, gather(data, idx, mask, row))
            return pin_train_state(distribution, trainer.train_step(ts, batch, step_rng(seed, ts.step))[0])

        # a chunk's result is pinned as each step's is: XLA lays a loop's carry out as it likes (a bias
        # of a model-parallel layer came back split), and the next call must get what it was given
        def train_chunk(ts, data, idx, mask, start, count, seed):
            body = lambda i, ts: train_one(ts, data, idx, mask, i, seed)
            return pin_train_state(distribution, jax.lax.fori_loop(start, start + count, body, ts))

        def eval_one(params, state, metrics, data, idx, mask, row):
            ts = TrainState(params, state, None, None, metrics)
            batch = split_batch(distribution, gather(data, idx, mask, row))
            return pin_metrics(distribution, trainer.eval_step(ts, batch).metrics)

        def eval_chunk(params, state, metrics, data, idx, mask, start, count):
            body = lambda i, metrics: eval_one(params, state, metrics, data, idx, mask, i)
            return pin_metrics(distribution, jax.lax.fori_loop(start, start + count, body, metrics))

        def first_rows(data, idx, row, rows):  # a short batch's real rows (padding comes after them)
            batch = jax.tree_util.tree_map(lambda a: a[:rows], gather(data, idx, None, row))
            return split_batch(distribution, batch)

        def train_rows(ts, data, idx, row, seed, rows):
            batch = first_rows(data, idx, row, rows)
            return pin_train_state(distribution, trainer.train_step(ts, batch, step_rng(seed, ts.step))[0])

        def eval_rows(params, state, metrics, data, idx, row, rows):
            ts = TrainState(params, state, None, None, metrics)
            return pin_metrics(distribution, trainer.eval_step(ts, first_rows(data, idx, row, rows)).metrics)

        self._train_chunk = _perf.dispatching(_perf.donated(train_chunk, 0))
        self._train_one = _perf.dispatching(_perf.donated(train_one, 0))
        self._eval_chunk = _perf.dispatching(_perf.donated(eval_chunk, 2))
        self._eval_one = _perf.dispatching(_perf.donated(eval_one, 2))
        self._train_rows = _perf.dispatching(_perf.donated(train_rows, 0, static=(5,)))
        self._eval_rows = _perf.dispatching(_perf.donated(eval_rows, 2, static=(6,)))
        self._results = jax.jit(
            lambda metrics: trainer.metric_results(TrainState(None, None, None, None, metrics))
        )
        self._train_results = self._results  # unless a custom train step logs its own (``core._custom_step``)
        if trainer is not None and trainer.train_results is not trainer.metric_results:
            self._train_results = jax.jit(
                lambda metrics: trainer.train_results(TrainState(None, None, None, None, metrics))
            )
        self._fresh_metrics: dict | None = None  # zeroed metrics made ahead by ``prepare_reset``
        self._counts = {"train": 1, "test": 1}  # steps per fused call, learnt as calls are timed
        self._warm = {"train": False, "test": False}  # whether the fused program has run (compiled)
        self.latest: TrainState | None = None  # the newest state of an epoch that raised
        self.evaluated: dict | None = None  # the metric state the last evaluation ended with

    def reset_metrics(self, ts: TrainState) -> TrainState:
        """``ts`` with zeroed metrics, those made ahead by ``prepare_reset`` if any."""
        fresh, self._fresh_metrics = self._fresh_metrics, None
        return ts._replace(metrics=fresh) if fresh is not None else self.trainer.reset_metrics(ts)

    def prepare_reset(self) -> None:
        """Make the next epoch's zeroed metrics now (placing them on the device takes a few 100 us)."""
        self._fresh_metrics = self.trainer.reset_metrics(TrainState(None, None, None, None, {})).metrics

    def logs(self, metrics: dict, training: bool = False) -> dict:
        """The running logs (device arrays) from a metric state, sorted by name."""
        return self.ordered((self._train_results if training else self._results)(metrics))

    @property
    def metric_entries(self) -> tuple:
        """``(log name, Metric, output index, weighted)`` of the trainer's compiled metrics."""
        return self.trainer.metric_entries

    @property
    def capacity(self) -> int:
        """Batches stacked per fused call when they come from the host."""
        return STREAM_CHUNK if self.steps_per_execution == "auto" else self.steps_per_execution

    def fuse(
        self,
        per_batch_callbacks: bool,
        sample_shapes: list | None = None,
        batch_size: int | None = None,
        probe: Callable[[], tuple[TrainState, Chunk, int] | None] | None = None,
    ) -> bool:
        """Whether to run many steps per call (see the module docstring); the data's shapes and batch size.

        ``probe()``, called only if the choice is timed, gives what the first step would get: a copy of
        the train state (the timing donates it), the data's first chunk and the seed, or None where the
        chunks depend on the choice. The timing then runs this loop's own programs on them, so the form
        kept is not compiled again.
        """
        if self.steps_per_execution != "auto":
            return self.steps_per_execution > 1
        if per_batch_callbacks:
            return False
        if self._fused is None:
            runs = None if probe is None else lambda: self._probe_runs(probe())
            self._fused = _perf.fuses_well(self.model, sample_shapes, batch_size, runs)
        return self._fused

    def _probe_runs(self, first_step: tuple[TrainState, Chunk, int] | None) -> Runs | None:
        """The fusing probe's runs of this loop's train programs from ``first_step``'s arguments, if any."""
        return None if first_step is None else program_runs(self._train_one, self._train_chunk, *first_step)

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

    def _pieces(self, chunk: Chunk) -> Iterator[tuple[Chunk, int | None]]:
        """``chunk`` as a step without a padding mask needs it (``Trainer.exact_batches``): runs of full
        batches without the mask, ``(piece, None)``, and each short batch alone, ``(piece, real rows)``."""
        if not self.trainer.exact_batches or chunk.mask is None:
            yield chunk, None
            return
        real = np.asarray(chunk.mask[chunk.start : chunk.start + chunk.count]).sum(axis=1).astype(int)
        full, start, end = chunk.mask.shape[1], chunk.start, chunk.start + chunk.count
        for row, rows in enumerate(real.tolist(), chunk.start):
            if rows < full:
                if row > start:
                    yield chunk._replace(mask=None, start=start, count=row - start), None
                yield chunk._replace(mask=None, start=row, count=1), rows
                start = row + 1
        if end > start:
            yield chunk._replace(mask=None, start=start, count=end - start), None

    @staticmethod
    def ordered(logs: dict) -> dict:
        """Logs sorted by name, as Keras's JAX backend hands them to callbacks and ``History``."""
        return dict(sorted(logs.items()))

    def _floats(self, metrics: dict, training: bool = False) -> dict:
        """The logs as Python floats (arrays for vector metrics); on the host when all are losses."""
        logs = self.trainer.host_results(metrics)
        if logs is None:
            logs = jax.device_get((self._train_results if training else self._results)(metrics))
        return {k: log_value(v) for k, v in self.ordered(logs).items()}

    def train_epoch(
        self,
        ts: TrainState,
        take: Callable,
        fused: bool,
        seed: int,
        callbacks: Any,
        session: FitSession,
        ahead: Callable | None = None,
        first_step: Callable[[Callable, tuple], None] | None = None,
    ) -> tuple[TrainState, int, dict | None]:
        """One epoch of training (``seed`` feeds Dropout): the new state, the steps run, the epoch's logs.

        ``callbacks`` is a ``CallbackList`` or None; its batch hooks run with the
        model holding the current weights (``session.around_hook``).
        ``ahead(steps)``, if given, runs once every step is dispatched and before
        the logs are read, so host work for the next epoch overlaps this one's compute.
        ``first_step(program, args)``, if given, runs just before the epoch's
        first call ``program(*args)`` (the session keeps its start copy there).
        The state ``ts`` is donated to the first step: if the epoch ends in an
        exception (a callback's, an interrupt), ``self.latest`` holds the newest one.
        """
        per_batch = callbacks is not None and callbacks.needs_every_batch("train")
        watched = callbacks is not None and callbacks.has_batch_hooks("train")
        run_hook = session.around_hook if per_batch else _without_hand_off
        done, started = 0, False
        stopping = bool(self.model.stop_training)
        try:
            for chunk in self._chunks(take, fused, watched, "train", stopping):
                if watched:
                    ts = run_hook(ts, lambda done=done: callbacks.on_train_batch_begin(done))
                for piece, rows in self._pieces(chunk):
                    where = (piece.data, piece.idx, piece.mask, piece.start)
                    if rows is not None:
                        program, args = self._train_rows, (ts, piece.data, piece.idx, piece.start, seed, rows)
                    elif fused:
                        program, args = self._train_chunk, (ts, *where, piece.count, seed)
                    else:
                        program, args = self._train_one, (ts, *where, seed)
                    if first_step is not None and not started:
                        first_step(program, args)
                    ts, started = program(*args), True
                done += chunk.count
                if watched:
                    logs = self.logs(ts.metrics, training=True)
                    if fused and self.steps_per_execution == "auto":
                        jax.block_until_ready(logs)  # the call is timed to size the next one
                    end = lambda done=done, logs=logs: callbacks.on_train_batch_end(done - 1, logs)
                    ts = run_hook(ts, end)
                if self.model.stop_training:
                    break
        except BaseException:
            self.latest = ts
            raise
        if ahead is not None and done:
            ahead(done)
        return ts, done, self._floats(ts.metrics, training=True) if done else None

    def evaluate(self, ts: TrainState, take: Callable, fused: bool, callbacks: Any) -> dict:
        """Losses and metrics over every batch ``take`` gives, as Python floats (``callbacks``: or None)."""
        metrics = self.trainer.reset_metrics(ts).metrics
        watched = callbacks is not None and callbacks.has_batch_hooks("test")
        done = 0
        stopping = bool(self.model.stop_evaluating)
        for chunk in self._chunks(take, fused, watched, "test", stopping):
            if watched:
                callbacks.on_test_batch_begin(done)
            for piece, rows in self._pieces(chunk):
                if rows is not None:
                    where = (piece.data, piece.idx, piece.start, rows)
                    metrics = self._eval_rows(ts.params, ts.state, metrics, *where)
                    continue
                args = (ts.params, ts.state, metrics, piece.data, piece.idx, piece.mask, piece.start)
                metrics = self._eval_chunk(*args, piece.count) if fused else self._eval_one(*args)
            done += chunk.count
            if watched:
                logs = self.logs(metrics)
                if fused and self.steps_per_execution == "auto":
                    jax.block_until_ready(logs)
                callbacks.on_test_batch_end(done - 1, logs)
            if self.model.stop_evaluating:
                break
        if not done:
            raise ValueError("The evaluation data set is empty.")
        self.evaluated = metrics
        return self._floats(metrics)


def _without_hand_off(ts: TrainState, hook: Callable[[], None]) -> TrainState:
    """Run a chunk-safe hook (the progress bar): it reads logs, not weights, so no hand-off is needed."""
    hook()
    return ts


def _next_count(count: int, ran: int, seconds: float, first: bool) -> int:
    """Steps for the next fused call, aiming at ``_CHUNK_SECONDS`` per call (the first call compiles)."""
    if first or seconds <= 0:
        return min(2 * count, _MAX_CHUNK)
    target = max(1, int(_CHUNK_SECONDS * max(ran, 1) / seconds))
    return int(min(target, 4 * count, _MAX_CHUNK))


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
