"""Keras's JAX-backend ``train_step(self, state, data)`` and ``test_step(self, state, data)``, run by fit.

Keras's form threads lists of values through the step: ``(trainable_variables,
non_trainable_variables, optimizer_variables, metrics_variables)`` for training,
``(trainable_variables, non_trainable_variables, metrics_variables)`` for
evaluation, and returns ``(logs, state)``. Fit's :class:`TrainState` holds the same
values as pytrees; :func:`with_keras_steps` converts between the two inside the
jitted step, so the user's method is traced into the one compiled program (fused
multi-step loops and donated buffers work unchanged):

- trainable and non-trainable variables are the params and state pytrees' leaves at
  the variables' paths (``model/_stateless.py``), plus the seed state of a model with
  random layers, made from the step's rng (its advanced value is not kept: fit draws
  each step's rng from its seed and the step count);
- optimizer variables are the leaves of fit's optax state; inside the step
  ``self.optimizer`` is a :class:`StepOptimizer`, whose ``stateless_apply`` puts the
  lists back into those trees, so frozen layers keep their zero updates;
- metrics variables are those of ``model.metrics`` in order, kept in the train state's
  metrics and reset at each epoch's start and each evaluation's, as Keras resets them.

The logs shown are the step's, nested dicts flattened (Keras's ``pythonify_logs``).
The user's code has no padding mask, so batches reach it unpadded, as Keras gives them
(``Trainer.exact_batches``: fit runs a short last batch as a program of its own).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dagjax.model._stateless import read_variables, seed_state, write_variables
from dagjax.training.core._batch_structure import inputs_as_built, targets_as_built
from dagjax.training.core._trainer import Trainer, TrainState, unpack_batch

VARIABLES = "keras_metrics_variables"  # the values of model.metrics' variables, in the train state's metrics
TRAIN_LOGS = "keras_train_logs"
TEST_LOGS = "keras_test_logs"


class StepOptimizer:
    """``self.optimizer`` inside a Keras-form step: Keras's list form over fit's optimizer state.

    Everything but ``stateless_apply`` is the compiled optimizer's.
    """

    def __init__(self, model: Any, optimizer: Any, params: dict, state: dict, opt_tree: Any) -> None:
        self._model, self._optimizer, self.params, self.state = model, optimizer, params, state
        self._opt_tree = opt_tree  # the structure of fit's optimizer state (None in a test step)
        self.dropped_losses = False  # set by a stateless_call whose forward-pass losses were not returned

    def stateless_apply(
        self, optimizer_variables: list, grads: list, trainable_variables: list
    ) -> tuple[list, list]:
        """One optimizer step from values alone: ``(new trainable_variables, new optimizer_variables)``."""
        if self._opt_tree is None:
            raise ValueError("test_step has no optimizer state: optimizer.stateless_apply is for train_step.")
        model, count = self._model, len(self._model.trainable_weights)
        lengths = (len(optimizer_variables), len(grads), len(trainable_variables))
        if lengths != (self._opt_tree.num_leaves, count, count):
            raise ValueError(
                f"optimizer.stateless_apply: model '{model.name}' has {count} trainable variables and the "
                f"optimizer {self._opt_tree.num_leaves} values; got {len(trainable_variables)} variables, "
                f"{len(grads)} gradients and {len(optimizer_variables)} optimizer values (pass the state's "
                "lists)."
            )
        values = [jnp.asarray(v) for v in optimizer_variables]
        opt_state = jax.tree_util.tree_unflatten(self._opt_tree, values)
        caller = "optimizer.stateless_apply"
        params, _ = write_variables(model, self.params, self.state, trainable_variables, [], caller)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, self.params)  # frozen weights: no gradient
        grad_tree, _ = write_variables(model, zeros, self.state, grads, [], caller)
        updates, opt_state = self._optimizer.update(grad_tree, opt_state, params)
        trainable, _ = read_variables(model, optax.apply_updates(params, updates), self.state)
        return trainable, jax.tree_util.tree_leaves(opt_state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._optimizer, name)


@contextlib.contextmanager
def step_scope(model: Any, trainer: Trainer, optimizer: StepOptimizer) -> Iterator[None]:
    """While tracing a step: ``model.trainer``, ``model.metrics`` and ``model.optimizer`` are the step's."""
    previous = model.step_trainer, model.step_optimizer
    model.step_trainer, model.step_optimizer = trainer, optimizer
    try:
        yield
    finally:
        model.step_trainer, model.step_optimizer = previous


def hand_to_metrics(model: Any, trainer: Trainer, metrics: dict) -> None:
    """Give ``model.metrics`` the variables a Keras-form step left in ``metrics`` (a train state's), as
    Keras syncs its metrics' variables after ``fit`` and ``evaluate``."""
    values = list(jax.device_get(metrics[VARIABLES]))
    with step_scope(model, trainer, None):
        for metric in model.metrics:
            count = len(metric.variables)
            metric.assign_variables(values[:count])
            values = values[count:]


def keras_data(model: Any, x: list, y: list | None, sample_weight: Any) -> tuple:
    """A fit batch as Keras's ``data``: ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` in the model's
    input and output structures."""
    inputs = inputs_as_built(model, x)
    if y is None or all(t is None for t in y):
        return (inputs,) if sample_weight is None else (inputs, None, sample_weight)
    targets = targets_as_built(model, y)
    return (inputs, targets) if sample_weight is None else (inputs, targets, sample_weight)


def flat_logs(logs: dict, method: str) -> dict:
    """A step's logs with nested dicts flattened into one (Keras's ``pythonify_logs``), checked."""
    if not isinstance(logs, dict):
        raise TypeError(
            f"{method} must return (logs, state) with logs a dict of scalars; got {type(logs).__name__}."
        )
    flat: dict = {}
    for name, value in logs.items():
        flat.update(flat_logs(value, method) if isinstance(value, dict) else {str(name): jnp.asarray(value)})
    return flat


def _returned_state(result: Any, method: str, given: tuple) -> tuple[dict, tuple]:
    """``(logs, state)`` from the user's step, its state checked against the lists it was given."""
    names = ("trainable_variables", "non_trainable_variables", "optimizer_variables", "metrics_variables")
    names = names if len(given) == 4 else (names[0], names[1], names[3])
    form = f"(logs, ({', '.join(names)}))"
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(f"{method} must return {form}, as Keras's JAX backend; got {type(result).__name__}.")
    logs, state = result
    logs = flat_logs(logs, method)
    if not (isinstance(state, (tuple, list)) and len(state) == len(given)):
        raise TypeError(f"{method} must return {form}; its state is not a tuple of {len(given)} lists.")
    for name, new, old in zip(names, state, given):
        if len(new) != len(old):
            raise ValueError(
                f"{method} returned {len(new)} {name}, given {len(old)}: return one value per variable, "
                "in the order the state gave them."
            )
    return logs, tuple(state)


def cast_like(new: list, old: list, what: str) -> list:
    """``new`` values cast to the dtypes of ``old`` (a compiled loop carries fixed types), shapes checked."""
    out = []
    for i, (value, previous) in enumerate(zip(new, old)):
        value = jnp.asarray(getattr(value, "value", value))
        if value.shape != jnp.shape(previous):
            raise ValueError(
                f"The step returned {what}[{i}] of shape {value.shape}, given {jnp.shape(previous)}."
            )
        out.append(value.astype(jnp.asarray(previous).dtype))
    return out


def with_keras_steps(
    trainer: Trainer, model: Any, train: Callable | None, test: Callable | None, target_shapes: list
) -> Trainer:
    """``trainer`` running the model's bound Keras-form ``train`` and/or ``test`` step (None: its own)."""
    method = lambda name: f"{type(model).__name__}.{name}"
    seeded = bool(seed_state(model))

    def metric_values() -> list:
        with step_scope(model, trainer, None):
            return [jnp.asarray(v) for metric in model.metrics for v in metric.stateless_reset_state()]

    def run_train(ts: TrainState, batch: tuple, rng: Any) -> tuple[TrainState, dict]:
        x, y, sample_weight, mask = unpack_batch(batch, list(model.output_names))
        assert mask is None, "exact_batches: fit gives a Keras-form step unpadded batches"
        trainable, frozen = read_variables(model, ts.params, ts.state)
        seeds = [jax.random.key_data(rng)] if seeded else []
        opt_values, opt_tree = jax.tree_util.tree_flatten(ts.opt_state)
        given = (trainable, frozen + seeds, opt_values, list(ts.metrics[VARIABLES]))
        optimizer = StepOptimizer(model, trainer.optimizer, ts.params, ts.state, opt_tree)
        with step_scope(model, trainer, optimizer):
            result = train(tuple(given), keras_data(model, x, y, sample_weight))
        logs, returned = _returned_state(result, method("train_step"), given)
        new_trainable, new_frozen, new_opt, new_metrics = returned
        new_trainable = cast_like(new_trainable, trainable, "trainable_variables")
        new_frozen = cast_like(list(new_frozen)[: len(frozen)], frozen, "non_trainable_variables")
        params, state = write_variables(model, ts.params, ts.state, new_trainable, new_frozen, "train_step")
        new_opt = cast_like(new_opt, opt_values, "optimizer_variables")
        opt_state = jax.tree_util.tree_unflatten(opt_tree, new_opt)
        metrics = {**ts.metrics, VARIABLES: cast_like(new_metrics, given[3], "metrics_variables")}
        return TrainState(params, state, opt_state, ts.step + 1, metrics), logs

    def run_test(ts: TrainState, batch: tuple) -> tuple[TrainState, dict]:
        x, y, sample_weight, mask = unpack_batch(batch, list(model.output_names))
        assert mask is None, "exact_batches: fit gives a Keras-form step unpadded batches"
        trainable, frozen = read_variables(model, ts.params, ts.state)
        seeds = [state.value for state in seed_state(model)]
        given = (trainable, frozen + seeds, list(ts.metrics[VARIABLES]))
        with step_scope(model, trainer, StepOptimizer(model, trainer.optimizer, ts.params, ts.state, None)):
            result = test(tuple(given), keras_data(model, x, y, sample_weight))
        logs, (_, _, new_metrics) = _returned_state(result, method("test_step"), given)
        values = cast_like(new_metrics, given[2], "metrics_variables")
        return ts._replace(metrics={**ts.metrics, VARIABLES: values}), logs

    # The logs' structure, found once on shapes alone, gives the train state a slot for them from the start.
    fresh = lambda ts: ts._replace(metrics={**trainer.reset_metrics(ts).metrics, VARIABLES: metric_values()})
    initial = lambda: fresh(trainer.init_train_state(*model.init_weights(jax.random.key(0))))
    abstract_ts = jax.eval_shape(initial)
    batch = _abstract_batch(model, target_shapes)
    slots = {}
    if train is not None:
        slots[TRAIN_LOGS] = jax.eval_shape(run_train, abstract_ts, batch, jax.random.key(0))[1]
    if test is not None:
        slots[TEST_LOGS] = jax.eval_shape(run_test, abstract_ts, batch)[1]

    def zero_logs() -> dict:
        zeros = lambda logs: {name: np.zeros(s.shape, s.dtype) for name, s in logs.items()}
        return {slot: zeros(logs) for slot, logs in slots.items()}

    def reset_metrics(ts: TrainState) -> TrainState:
        ts = fresh(ts)
        return ts._replace(metrics={**ts.metrics, **jax.device_put(zero_logs())})

    def in_slot(slot: str, logs: dict) -> dict:
        return {name: jnp.asarray(value, slots[slot][name].dtype) for name, value in logs.items()}

    def train_step(ts: TrainState, batch: tuple, rng: Any, hyperparams: dict | None = None) -> tuple:
        new, logs = run_train(ts, batch, rng)
        logs = in_slot(TRAIN_LOGS, logs)
        return new._replace(metrics={**new.metrics, TRAIN_LOGS: logs}), logs

    def eval_step(ts: TrainState, batch: tuple, hyperparams: dict | None = None) -> TrainState:
        new, logs = run_test(ts, batch)
        return new._replace(metrics={**new.metrics, TEST_LOGS: in_slot(TEST_LOGS, logs)})

    logged = lambda slot: lambda ts: dict(ts.metrics[slot])
    return trainer._replace(
        init_train_state=lambda params, state: reset_metrics(trainer.init_train_state(params, state)),
        reset_metrics=reset_metrics,
        train_step=trainer.train_step if train is None else train_step,
        train_results=trainer.train_results if train is None else logged(TRAIN_LOGS),
        eval_step=trainer.eval_step if test is None else eval_step,
        metric_results=trainer.metric_results if test is None else logged(TEST_LOGS),
        host_results=lambda metrics: None,
        exact_batches=True,
    )


def _abstract_batch(model: Any, target_shapes: list) -> tuple:
    """A fit batch ``(x, y, None)`` as shapes only, 2 rows each (the logs' structure does not need sizes)."""
    sized = lambda shape: (2, *(2 if d is None else d for d in shape[1:]))
    x = [jax.ShapeDtypeStruct(sized(t.shape), t.dtype) for t in model.inputs]
    y = [jax.ShapeDtypeStruct(sized(shape), np.float32) for shape in target_shapes]
    return x, y, None
