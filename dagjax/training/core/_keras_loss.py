"""Keras's ``model.compute_loss``: compile's losses on given targets and outputs, plus the weight penalty.

Keras's ``compute_loss(x, y, y_pred, sample_weight)`` sums compile's weighted losses and
``model.losses``. Here the losses are the trainer's (``Trainer.compiled_loss``) and the
penalty is the weight regularizers' at the weights in hand: the model's own weights outside
a step, the ``trainable_variables`` given to ``stateless_compute_loss``. Inside a traced
step the model's weights are not the ones differentiated, so a penalty there needs those
values, and the error says so rather than adding a constant the gradient would not see.
Losses made in the forward pass (``add_loss`` in the graph or in a layer's ``call``, activity
regularizers) are not in ``y_pred``: ``stateless_call(..., return_losses=True)`` returns them for the
step to add, as Keras's. A step whose ``stateless_call`` dropped them (Keras leaves them out
silently) is refused by ``compute_loss``, naming them, as is a model with them outside a step.

A model with several trained outputs lists a ``<output>_loss`` tracker per output in
``model.metrics`` (Keras's ``compile_loss.metrics``); ``stateless_compute_loss`` counts each
output's unweighted loss in its tracker's values, in the ``metrics_variables`` it returns, as
Keras's does under its stateless scope (:func:`count_output_losses`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from dagjax.model._stateless import write_variables
from dagjax.training.core._trainer import Trainer, flatten_outputs, frozen_pruned, trainable_mask


def compute_loss(
    model: Any, trainer: Trainer, y: Any, y_pred: Any, sample_weight: Any, trainable: list | None = None
) -> Any:
    """compile's weighted losses plus the weight penalty at ``trainable`` (None: at the model's weights)."""
    scope = model.step_optimizer  # inside a traced step: holds that step's weights
    in_step = scope is not None
    _refuse_forward_losses(model, scope)
    loss = trainer.compiled_loss(y, y_pred, sample_weight)[0]
    params, state = (scope.params, scope.state) if in_step else model.weights_view()
    if trainable is not None:
        params, _ = write_variables(model, params, state, trainable, [], "stateless_compute_loss")
    penalty = model.weight_penalty(frozen_pruned(params, trainable_mask(model, params)))
    if isinstance(penalty, float):  # no weight regularizers (a Python 0.0)
        return loss
    if in_step and trainable is None:
        raise NotImplementedError(
            f"Model '{model.name}' has weight regularizers, whose penalty depends on the weights your step "
            "differentiates: call self.stateless_compute_loss(trainable_variables, non_trainable_variables, "
            "metrics_variables, x=x, y=y, y_pred=y_pred, sample_weight=sample_weight) instead of "
            "self.compute_loss(...), as Keras's own JAX train_step does."
        )
    return loss + penalty


def _refuse_forward_losses(model: Any, scope: Any) -> None:
    """Raise, naming them, when the forward pass adds losses compute_loss would leave out: in a step
    (``scope``), those its ``stateless_call`` dropped; outside one, any in the graph."""
    regularized = [layer.name for layer in model.layers if getattr(layer, "activity_regularizer", None)]
    dropped = scope.dropped_losses if scope is not None else bool(model._loss_tensors or regularized)
    if not dropped:
        return
    what = "losses that its layers' call adds (add_loss)"
    what = "add_loss losses" if model._loss_tensors else what
    what = f"activity regularizers ({', '.join(regularized)})" if regularized else what
    raise NotImplementedError(
        f"Model '{model.name}' has {what}, computed in its forward pass, which stateless_call does not "
        "return without return_losses=True, so compute_loss cannot add them. Write y_pred, "
        "non_trainable_variables, losses = self.stateless_call(..., return_losses=True) and add sum(losses) "
        "to the loss, train with fit's default step, or with the pure train_step(self, train_state, batch, "
        "rng), whose self.trainer.batch_loss includes them."
    )


def count_output_losses(
    model: Any, trainer: Trainer, trackers: dict, y: Any, y_pred: Any, sample_weight: Any, variables: list
) -> list:
    """``variables`` (those of ``model.metrics``, in order) with each output's unweighted loss counted
    in its ``<output>_loss`` tracker (``trackers``: output index -> Mean), weighted by the batch's rows as
    Keras's ``CompileLoss`` counts them. Trackers a model's own ``metrics`` does not list are left out."""
    if not trackers:
        return list(variables)
    metrics = model.metrics
    sizes = [len(metric.variables) for metric in metrics]
    if len(variables) != sum(sizes):
        names = ", ".join(metric.name for metric in metrics)
        raise ValueError(
            f"Model '{model.name}'.stateless_compute_loss: model.metrics ({names}) have {sum(sizes)} "
            f"variables, got metrics_variables of {len(variables)}: pass the state's metrics_variables."
        )
    per_output = trainer.compiled_loss(y, y_pred, sample_weight)[1]
    by_tracker = {id(tracker): index for index, tracker in trackers.items()}
    new, start = list(variables), 0
    for metric, size in zip(metrics, sizes):
        index = by_tracker.get(id(metric))
        if index is not None:
            rows = jnp.shape(flatten_outputs(y_pred)[index])[0]
            part = new[start : start + size]
            counted = metric.stateless_update_state(part, per_output[index], sample_weight=rows)
            new[start : start + size] = counted
        start += size
    return new
