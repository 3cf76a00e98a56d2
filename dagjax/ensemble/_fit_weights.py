"""``fit_weights``: the averaging weights that minimise a loss on validation data.

Each member predicts the validation inputs once; then the weights, as the
softmax of free logits (so they stay non-negative and sum to one), are fitted
by Adam on the loss of the weighted mean of those fixed predictions. The
logits start at zero (uniform weights) and the best weights seen are kept, so
the result is never worse on this data than uniform weights. Everything is one
compiled ``lax.scan`` on fixed data: deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dagjax import losses
from dagjax._graph import by_name
from dagjax.ensemble._members import check_members, input_order
from dagjax.model import Model

_CALLER = "dj.ensemble.fit_weights"


def fit_weights(
    models: Sequence[Model],
    x_val: Any,
    y_val: Any,
    loss: Any,
    steps: int = 300,
    learning_rate: float = 0.1,
    batch_size: int | None = None,
) -> list[float]:
    """Non-negative weights, one per model and summing to one, for ``dj.ensemble.average(models, weights)``.

    ``x_val`` / ``y_val``: validation arrays as ``predict`` and ``evaluate``
    take them (for several outputs, ``y_val`` is a list or a dict by output
    name). ``loss``: a Keras loss name, a dagjax loss or a function
    ``(y_true, y_pred)``, for every output, or a list or dict of them per output
    (as ``compile``; a dict may leave outputs out). ``steps`` Adam steps of
    ``learning_rate`` fit the weights; ``batch_size`` is ``predict``'s.
    """
    models = check_members(models, _CALLER)
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"{_CALLER}: steps must be a non-negative int, got {steps!r}.")
    if not learning_rate > 0:
        raise ValueError(f"{_CALLER}: learning_rate must be positive, got {learning_rate!r}.")
    first = models[0]
    targets = by_name(y_val, first.output_names, "y_val", arrays=True, model=first.name)
    loss_fns = by_name(loss, first.output_names, "loss", fill=None, broadcast=True, model=first.name)
    if all(fn is None for fn in loss_fns):
        raise ValueError(
            f"{_CALLER}: `loss` names no output of {first.output_names}; give at least one a loss."
        )
    predictions = [_predictions(first, model, x_val, batch_size) for model in models]
    _check_rows(first, models, predictions, targets)
    objective, data = _objective(predictions, targets, loss_fns)
    logits = _fit_logits(objective, data, len(models), steps, learning_rate)
    weights = np.asarray(jax.nn.softmax(logits), np.float64)
    return [float(w) for w in weights / weights.sum()]


def _predictions(first: Model, model: Model, x_val: Any, batch_size: int | None) -> list[np.ndarray]:
    """``model``'s outputs on ``x_val`` as a list in output order (dicts by sorted key, as model.outputs)."""
    inputs = by_name(x_val, first.input_names, "x_val", kind="input", arrays=True, model=first.name)
    ordered = [inputs[j] for j in input_order(first, model)]
    out = model.predict(ordered[0] if len(ordered) == 1 else ordered, batch_size=batch_size, verbose=0)
    return [np.asarray(p) for p in jax.tree_util.tree_leaves(out)]


def _check_rows(first: Model, models: list[Model], predictions: list, targets: list) -> None:
    """Every member predicted one row per target row (a consumed generator, or x and y of two sizes, fail)."""
    for i, (name, target) in enumerate(zip(first.output_names, targets)):
        rows = np.shape(target)[0] if np.ndim(target) else None
        for model, outputs in zip(models, predictions):
            if outputs[i].shape[0] != rows:
                raise ValueError(
                    f"{_CALLER}: y_val for output '{name}' has {rows} rows but model '{model.name}' "
                    f"predicted {outputs[i].shape[0]} from x_val; give x_val and y_val the same samples, "
                    "as arrays."
                )


def _objective(predictions: list, targets: list, loss_fns: list) -> tuple[Any, Any]:
    """``(objective, data)``: ``objective(weights, data)`` is the total loss of the weighted mean.

    ``data`` holds, per output with a loss, the members' stacked predictions
    (members first) and the targets; it is an argument, not a constant, so the
    compiled program does not embed the validation set.
    """
    data, used = [], []
    for i, (target, fn) in enumerate(zip(targets, loss_fns)):
        if fn is None:
            continue
        outputs = np.stack([member[i] for member in predictions])
        data.append((outputs, np.asarray(target)))
        used.append(losses.get(fn, np.shape(target), outputs.shape[1:]))

    def objective(weights: jax.Array, data: list) -> jax.Array:
        value = 0.0
        for (outputs, target), loss_fn in zip(data, used):
            value = value + loss_fn(target, jnp.tensordot(weights.astype(outputs.dtype), outputs, axes=1))
        return value

    return objective, data


def _fit_logits(objective: Any, data: Any, count: int, steps: int, learning_rate: float) -> jax.Array:
    """The softmax logits of the lowest objective seen over ``steps`` Adam steps from zero (uniform)."""
    optimizer = optax.adam(learning_rate)
    loss_of = lambda logits, data: objective(jax.nn.softmax(logits), data)

    @jax.jit
    def run(logits: jax.Array, data: Any) -> jax.Array:
        def step(carry: tuple, _: None) -> tuple:
            logits, opt_state, best, best_value = carry
            value, grad = jax.value_and_grad(loss_of)(logits, data)
            better = value < best_value
            best, best_value = jnp.where(better, logits, best), jnp.where(better, value, best_value)
            updates, opt_state = optimizer.update(grad, opt_state, logits)
            return (optax.apply_updates(logits, updates), opt_state, best, best_value), None

        start = (logits, optimizer.init(logits), logits, loss_of(logits, data))
        logits, _, best, best_value = jax.lax.scan(step, start, None, length=steps)[0]
        return jnp.where(loss_of(logits, data) < best_value, logits, best)

    return run(jnp.zeros((count,), jnp.float32), data)
