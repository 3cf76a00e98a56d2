"""A model's own pure ``train_step``, compiled by ``fit`` in place of the default step.

A ``Model`` subclass may define ``train_step(self, train_state, batch, rng) ->
(train_state, logs)``: a pure function of the :class:`TrainState` pytree, the
batch as ``fit`` cuts it (``(x, y, sample_weight)``, ``x`` and ``y`` in the structures the model
was built with, plus the padding mask in a padded last batch) and the step's rng.
``fit`` jits it exactly as it jits the default step (fused multi-step loops,
donated buffers), and shows ``logs`` (a dict of scalars, as Keras's
``train_step`` returns) as the training logs.
Inside it, ``self.trainer`` holds compile's pieces for this batch layout:
``batch_loss`` (differentiable), ``count_batch`` (the running loss and
metrics), ``optimizer`` and ``metric_results``. Evaluation keeps the default step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from dagjax.training.core._batch_structure import inputs_as_built, targets_as_built
from dagjax.training.core._trainer import Trainer, TrainState

STEP_LOGS = "step_logs"  # where the train state keeps the custom step's latest logs


def with_custom_step(trainer: Trainer, model: Any, step: Callable, target_shapes: list) -> Trainer:
    """``trainer`` with ``step`` (the model's bound ``train_step``) as its train step and logs.

    The logs' structure is found once by tracing ``step`` on shapes only, so the
    train state carries a slot for them from the first step (a fused loop needs it).
    """
    def run(ts: TrainState, batch: tuple, rng: Any) -> tuple[TrainState, dict]:
        x, y, *rest = batch
        batch = (inputs_as_built(model, x), None if y is None else targets_as_built(model, y), *rest)
        previous, model.step_trainer = model.step_trainer, trainer
        try:
            result = step(ts, batch, rng)
        finally:
            model.step_trainer = previous
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], TrainState)):
            raise TypeError(
                f"{type(model).__name__}.train_step must return (train_state, logs): the new TrainState and "
                f"a dict of scalar logs; got {type(result).__name__}."
            )
        new, logs = result
        if not (isinstance(logs, dict) and all(isinstance(k, str) for k in logs)):
            raise TypeError(
                f"{type(model).__name__}.train_step's logs must be a dict of named scalars, as Keras's; "
                f"got {type(logs).__name__}."
            )
        return new, dict(logs)

    abstract_ts = jax.eval_shape(lambda: trainer.init_train_state(*model.init_weights(jax.random.key(0))))
    _, log_shapes = jax.eval_shape(run, abstract_ts, _abstract_batch(model, target_shapes), jax.random.key(0))

    def zero_logs() -> dict:
        return {name: np.zeros(s.shape, s.dtype) for name, s in log_shapes.items()}

    def reset_metrics(ts: TrainState) -> TrainState:
        ts = trainer.reset_metrics(ts)
        return ts._replace(metrics={**ts.metrics, STEP_LOGS: jax.device_put(zero_logs())})

    def init_train_state(params: dict, state: dict) -> TrainState:
        return reset_metrics(trainer.init_train_state(params, state))

    def train_step(ts: TrainState, batch: tuple, rng: Any, hyperparams: dict | None = None) -> tuple:
        new, logs = run(ts, batch, rng)
        logs = {name: jax.numpy.asarray(value, log_shapes[name].dtype) for name, value in logs.items()}
        return new._replace(metrics={**new.metrics, STEP_LOGS: logs}), logs

    def train_results(ts: TrainState) -> dict:
        return dict(ts.metrics[STEP_LOGS])

    return trainer._replace(
        init_train_state=init_train_state, train_step=train_step, reset_metrics=reset_metrics,
        train_results=train_results, host_results=lambda metrics: None,
    )


def _abstract_batch(model: Any, target_shapes: list) -> tuple:
    """``(x, y, None)`` as shapes only, 2 rows each (the logs' structure does not depend on the sizes)."""
    sized = lambda shape: (2, *(2 if d is None else d for d in shape[1:]))
    x = [jax.ShapeDtypeStruct(sized(t.shape), t.dtype) for t in model.inputs]
    y = [jax.ShapeDtypeStruct(sized(shape), np.float32) for shape in target_shapes]
    return x, y, None
