"""``fit_population``: epochs over in-memory arrays for every member at once, as ``fit`` runs them one by one.

Each member sees exactly the batches ``fit`` would show it under
``compile(seed=seed)``: its own shuffle per pass, drawn with ``(seed, step)``
(``host_plan``), gathered on the device from data placed there once
(``gather``), padded and masked the same way. An epoch is one compiled call
(or one call per step, where ``fit`` would choose that: ``_perf.fuses_well``),
the same program for every epoch and every member.

``on_epoch_end(epoch, logs)`` (optional) gets each member's logs of the epoch
(None for a member that was frozen) and may return new ``active`` flags: a
hyperparameter search reports each member's objective there and prunes the
losing ones, who then keep their weights while the others train on. A hook
with a ``state`` parameter also gets the population's state after the epoch,
to read weights from (its buffers go to the next epoch's step: copy what you
keep, ``jax.device_get``). Training ends after ``epochs`` or once no member is active.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from dagjax.training.core import Trainer, gather
from dagjax.training.fit import current_distribution, log_value
from dagjax.training.fit._batching import host_plan, pass_rows
from dagjax.training.fit._data import (
    ArrayData,
    array_data,
    check_same_targets,
    leaves,
    split,
    target_shapes,
    weight_shapes,
)
from dagjax.training.fit._distributed import put_whole
from dagjax.training.fit._perf import donated, fuses_well
from dagjax.training.population._population import (
    Population,
    PopulationState,
    member_results,
    member_rngs,
    reset_member_metrics,
    train_members,
)
from dagjax.training.population._process_rows import RowLayout, plan_on_devices, population_data
from dagjax.training.population._sharding import pin_population, place_population, split_rows

EpochHook = Callable[[int, list], Sequence[bool] | None]


class _Programs:
    """The compiled epoch programs of one trainer over a population (compiled once each), laid out on
    ``dist``'s mesh when there is one (``_sharding``)."""

    def __init__(self, trainer: Trainer, fused: bool, dist: Any = None) -> None:
        self.fused = fused

        def train_row(ps, data, idx, mask, active, row):
            batches = jax.vmap(gather, in_axes=(None, 0, None, None))(data, idx, mask, row)  # one per member
            batches = split_rows(dist, batches, member_axis=True)
            return pin_population(dist, train_members(trainer, ps, batches, member_rngs(ps), active, 0)[0])

        def train_rows(ps, data, idx, mask, active, start, count):
            body = lambda row, ps: train_row(ps, data, idx, mask, active, row)
            return pin_population(dist, jax.lax.fori_loop(start, start + count, body, ps))  # as fit's chunk

        def eval_rows(ps, data, idx, mask, count):
            def body(row, train):
                batch = split_rows(dist, gather(data, idx, mask, row), member_axis=False)
                step = lambda ts, hyper: trainer.eval_step(ts, batch, hyper)
                return jax.vmap(step)(train, ps.hyperparams)

            size = ps.seed.shape[0]
            train = reset_member_metrics(trainer, ps.train, size)
            return jax.lax.fori_loop(0, count, body, train).metrics

        self.train_rows = donated(train_rows, 0)
        self.train_row = donated(train_row, 0)
        self.eval_rows = jax.jit(eval_rows)
        self.results = jax.jit(lambda metrics: member_results(trainer, metrics))

    def train_epoch(self, ps: PopulationState, data: tuple, idx, mask, active, rows: int) -> PopulationState:
        """One pass of ``rows`` batches: one call, or one call per batch."""
        if self.fused:
            return self.train_rows(ps, data, idx, mask, active, 0, rows)
        for row in range(rows):
            ps = self.train_row(ps, data, idx, mask, active, row)
        return ps


def _member_logs(results: dict, index: int, prefix: str = "") -> dict:
    """Member ``index``'s logs as Python floats (arrays for vector metrics), keyed as Keras keys them."""
    return {f"{prefix}{name}": log_value(values[index]) for name, values in results.items()}


def _checked_data(population: Population, x: Any, y: Any, sample_weight: Any) -> ArrayData:
    """The data as ``fit`` reads it, its targets and sample weights checked against the losses."""
    objective = population.objective
    arrays = array_data(population.model, x, y, sample_weight, None, objective.needed_targets())
    preds = [t.shape for t in population.model.outputs]
    objective.check_targets(target_shapes(arrays), preds, weight_shapes(arrays.sample_weight, len(preds)))
    return arrays


def _member_plans(
    ps: PopulationState, size: int, batch_size: int, shuffle: bool, layout: RowLayout | None
) -> tuple:
    """Each member's pass ``(idx, mask)`` drawn as ``fit`` draws it, from ``(seed, step)``; on the device
    (over every process's rows in a multi-process run: ``_process_rows``)."""
    seeds, steps = jax.device_get((ps.seed, ps.train.step))
    plans = [host_plan((int(seed), int(step)), size, batch_size, shuffle) for seed, step in zip(seeds, steps)]
    mask = plans[0][1]  # where padding falls depends on the sizes alone: the same for every member
    return plan_on_devices(layout, np.stack([idx for idx, _ in plans]), mask)


def fit_population(
    population: Population,
    x: Any,
    y: Any,
    batch_size: int = 32,
    epochs: int = 1,
    *,
    shuffle: bool = True,
    sample_weight: Any = None,
    validation_split: float = 0.0,
    validation_data: tuple | None = None,
    on_epoch_end: EpochHook | None = None,
    state: PopulationState | None = None,
    active: Sequence[bool] | None = None,
) -> tuple[PopulationState, list[dict]]:
    """Train every member on ``(x, y)`` for ``epochs``; the final state and each member's history.

    A history is ``{log name: [one value per epoch the member trained]}``, as
    Keras's ``History.history``, with ``val_`` logs when ``validation_data``
    (``(x, y)`` or ``(x, y, sample_weight)``) or ``validation_split`` (the
    last share of the samples, before any shuffle, as ``fit``) is given. ``state`` continues a
    population (default: ``population.init()``); its buffers are donated to
    the steps, so keep the returned state, not the one passed in. ``active``
    gives the starting flags (default: all). See the module for ``on_epoch_end``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    ps = place_population(population.init() if state is None else state)
    flags = np.asarray(population.flags(active))
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}.")
    arrays = _checked_data(population, x, y, sample_weight)
    held_out = None
    if validation_data is not None:
        held_out = _validation_arrays(population, validation_data)
    elif validation_split:
        arrays, held_out = split(arrays, validation_split)
    size = arrays.size
    data, rows_per_batch, layout = population_data(leaves(arrays), size, batch_size, "training")
    rows = pass_rows(size, rows_per_batch)
    trainer, programs = _programs(population, arrays)
    val = None if held_out is None else _validation(population, arrays, held_out, batch_size)
    histories: list[dict] = [{} for _ in range(population.size)]
    takes_state = on_epoch_end is not None and "state" in inspect.signature(on_epoch_end).parameters
    for epoch in range(epochs):
        if not flags.any():
            break
        ps = ps._replace(train=reset_member_metrics(trainer, ps.train, population.size))
        idx, mask = _member_plans(ps, size, rows_per_batch, shuffle, layout)
        ps = programs.train_epoch(ps, data, idx, mask, put_whole(flags), rows)
        results = jax.device_get(programs.results(ps.train.metrics))
        val_results = None if val is None else jax.device_get(_evaluate(programs, ps, *val))
        logs: list = []
        for i in range(population.size):
            if not flags[i]:
                logs.append(None)
                continue
            member = _member_logs(results, i)
            if val_results is not None:
                member.update(_member_logs(val_results, i, "val_"))
            logs.append(dict(sorted(member.items())))
            for name, value in logs[-1].items():
                histories[i].setdefault(name, []).append(value)
        if on_epoch_end is not None:
            new = on_epoch_end(epoch, logs, state=ps) if takes_state else on_epoch_end(epoch, logs)
            if new is not None:
                flags = np.asarray(population.flags(new))
    return ps, histories


def _programs(population: Population, arrays: ArrayData) -> tuple[Trainer, _Programs]:
    """The trainer and compiled programs for the data's target shapes and the current distribution, made
    once per population and kept."""
    shapes, dist = target_shapes(arrays), current_distribution()
    key = (tuple(None if s is None else tuple(s[1:]) for s in shapes), dist)
    if key not in population.compiled:
        trainer = population.trainer_for(shapes)
        samples = [tuple(np.shape(v))[1:] for v in arrays.x]
        population.compiled[key] = (trainer, _Programs(trainer, fuses_well(population.model, samples), dist))
    return population.compiled[key]


def _validation_arrays(population: Population, data: Any) -> ArrayData:
    """``validation_data`` read and checked as ``fit`` reads it."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError("validation_data must be (x, y) or (x, y, sample_weight).")
    return _checked_data(population, *data, *([None] * (3 - len(data))))


def _validation(population: Population, train: ArrayData, arrays: ArrayData, batch_size: int) -> tuple:
    """``(arrays on the device, idx, mask, rows)`` for the validation data, read in order as ``fit`` does."""
    check_same_targets(population.model, target_shapes(train), target_shapes(arrays), "validation_data")
    data, rows_per_batch, layout = population_data(leaves(arrays), arrays.size, batch_size, "validation")
    idx, mask = plan_on_devices(layout, *host_plan(0, arrays.size, rows_per_batch, False))
    return data, idx, mask, idx.shape[0]


def _evaluate(programs: _Programs, ps: PopulationState, data: tuple, idx, mask, rows: int) -> dict:
    """Each member's validation logs ``(K,)`` per name."""
    return programs.results(programs.eval_rows(ps, data, idx, mask, rows))
