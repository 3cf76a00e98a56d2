"""Loss functions with Keras 3 names and numerics: one value per sample.

Each function is the Keras loss *function*: it reduces over the last axis only,
so ``(batch, k)`` targets give ``(batch,)`` values and sequence outputs
``(batch, T, k)`` give ``(batch, T)``. Targets and predictions whose ranks
differ by a trailing axis of size 1 are aligned first, as Keras's loss
wrapper does.

>>> mean_squared_error(jnp.array([[1.0, 0.0]]), jnp.array([[0.5, 0.0]]))
Array([0.125], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

EPSILON = 1e-7


def float_dtype(y_pred: ArrayLike) -> jnp.dtype:
    """The dtype losses compute in: ``y_pred``'s, promoted to a float of at least 32 bits."""
    return jnp.promote_types(jnp.asarray(y_pred).dtype, jnp.float32)


def align_ranks(x1: jax.Array, x2: jax.Array, expand_rank_1: bool = True) -> tuple[jax.Array, jax.Array]:
    """Squeeze or expand a trailing size-1 axis when the ranks differ by one (Keras's rule)."""
    if x1.ndim == x2.ndim + 1 and x1.shape[-1] == 1:
        if x2.ndim == 1 and expand_rank_1:
            x2 = jnp.expand_dims(x2, -1)
        else:
            x1 = jnp.squeeze(x1, -1)
    elif x2.ndim == x1.ndim + 1 and x2.shape[-1] == 1:
        if x1.ndim == 1 and expand_rank_1:
            x1 = jnp.expand_dims(x1, -1)
        else:
            x2 = jnp.squeeze(x2, -1)
    return x1, x2


def _prepare(y_true, y_pred):
    """Both as float arrays of y_pred's float type, with ranks aligned."""
    dtype = float_dtype(y_pred)
    return align_ranks(jnp.asarray(y_true).astype(dtype), jnp.asarray(y_pred).astype(dtype))


def divide_no_nan(x: jax.Array, y: jax.Array) -> jax.Array:
    """``x / y``, or 0 where ``y`` is 0."""
    safe = jnp.where(y == 0, jnp.ones_like(y), y)
    return jnp.where(y == 0, jnp.zeros_like(x / safe), x / safe)


def expand_to(weights: ArrayLike, values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``weights`` aligned with ``values`` by Keras's rank rule, then broadcast over trailing axes."""
    weights = jnp.asarray(weights).astype(values.dtype)
    values, weights = align_ranks(values, weights)
    weights = jnp.reshape(weights, weights.shape + (1,) * (values.ndim - weights.ndim))
    return values, weights


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
    """``x`` scaled to unit L2 norm along ``axis`` (zero vectors stay zero), as Keras normalizes."""
    inv_norm = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
    return x * jnp.minimum(inv_norm, 1.0 / EPSILON)


# Regression ---------------------------------------------------------------------------------------


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``mean(square(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return jnp.mean(jnp.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``mean(abs(y_true - y_pred), axis=-1)``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return jnp.mean(jnp.abs(y_true - y_pred), axis=-1)


def mean_absolute_percentage_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``100 * mean(abs((y_true - y_pred) / y_true), axis=-1)``, ``|y_true|`` floored at epsilon."""
    y_true, y_pred = _prepare(y_true, y_pred)
    diff = jnp.abs((y_true - y_pred) / jnp.maximum(jnp.abs(y_true), EPSILON))
    return 100.0 * jnp.mean(diff, axis=-1)


def mean_squared_logarithmic_error(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``mean(square(log(y_pred + 1) - log(y_true + 1)), axis=-1)``, inputs floored at epsilon."""
    y_true, y_pred = _prepare(y_true, y_pred)
    first = jnp.log(jnp.maximum(y_pred, EPSILON) + 1.0)
    second = jnp.log(jnp.maximum(y_true, EPSILON) + 1.0)
    return jnp.mean(jnp.square(first - second), axis=-1)


def cosine_similarity(y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1) -> jax.Array:
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``: -1 is most similar."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return -jnp.sum(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis), axis=axis)


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0) -> jax.Array:
    """Quadratic within ``delta`` of the target, linear beyond; mean over the last axis."""
    y_true, y_pred = _prepare(y_true, y_pred)
    error = y_pred - y_true
    abs_error = jnp.abs(error)
    quadratic = 0.5 * jnp.square(error)
    linear = delta * abs_error - 0.5 * delta**2
    return jnp.mean(jnp.where(abs_error <= delta, quadratic, linear), axis=-1)


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``, computed without overflow."""
    y_true, y_pred = _prepare(y_true, y_pred)
    x = y_pred - y_true
    return jnp.mean(x + jax.nn.softplus(-2.0 * x) - jnp.log(2.0).astype(x.dtype), axis=-1)


# Hinge --------------------------------------------------------------------------------------------


def _hinge_labels(y_true):
    """Labels in {0, 1} become {-1, 1}; any other labels are used as they are (Keras's rule)."""
    is_binary = jnp.all((y_true == 0) | (y_true == 1))
    return jnp.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``mean(maximum(1 - y_true * y_pred, 0), axis=-1)`` with labels in {-1, 1}."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return jnp.mean(jnp.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0), axis=-1)


def squared_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)`` with labels in {-1, 1}."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return jnp.mean(jnp.square(jnp.maximum(1.0 - _hinge_labels(y_true) * y_pred, 0.0)), axis=-1)


def categorical_hinge(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` over the last axis."""
    y_true, y_pred = _prepare(y_true, y_pred)
    pos = jnp.sum(y_true * y_pred, axis=-1)
    neg = jnp.max((1.0 - y_true) * y_pred, axis=-1)
    return jnp.maximum(neg - pos + 1.0, 0.0)


# Probabilistic ------------------------------------------------------------------------------------


def kl_divergence(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``sum(y_true * log(y_true / y_pred), axis=-1)`` with both clipped to [epsilon, 1]."""
    y_true, y_pred = _prepare(y_true, y_pred)
    y_true = jnp.clip(y_true, EPSILON, 1.0)
    y_pred = jnp.clip(y_pred, EPSILON, 1.0)
    return jnp.sum(y_true * jnp.log(y_true / y_pred), axis=-1)


def poisson(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """``mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    return jnp.mean(y_pred - y_true * jnp.log(y_pred + EPSILON), axis=-1)


def _log_probs(y_pred, from_logits: bool, axis: int):
    """Log class probabilities; probabilities are renormalized and clipped the Keras way."""
    if from_logits:
        return jax.nn.log_softmax(y_pred, axis=axis)
    y_pred = y_pred / jnp.sum(y_pred, axis=axis, keepdims=True)
    return jnp.log(jnp.clip(y_pred, EPSILON, 1.0 - EPSILON))


def binary_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> jax.Array:
    """Elementwise binary crossentropy, averaged over ``axis``; labels smoothed towards 0.5."""
    y_true, y_pred = _prepare(y_true, y_pred)
    if y_true.shape != y_pred.shape:  # as Keras: broadcasting (n, 1) against (n, 3) would hide a bug
        raise ValueError(
            f"binary_crossentropy expects targets shaped like the predictions, got "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        bce = -y_true * jax.nn.log_sigmoid(y_pred) - (1.0 - y_true) * jax.nn.log_sigmoid(-y_pred)
    else:
        p = jnp.clip(y_pred, EPSILON, 1.0 - EPSILON)
        bce = -(y_true * jnp.log(p) + (1.0 - y_true) * jnp.log(1.0 - p))
    return jnp.mean(bce, axis=axis)


def categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> jax.Array:
    """``-sum(y_true * log(p), axis)`` for one-hot (or soft) targets."""
    y_true, y_pred = _prepare(y_true, y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"categorical_crossentropy expects one-hot targets shaped like the predictions, got "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}. For integer class ids "
            f"use sparse_categorical_crossentropy."
        )
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[axis]
    return -jnp.sum(y_true * _log_probs(y_pred, from_logits, axis), axis=axis)


def sparse_labels(y_true: ArrayLike, y_pred: jax.Array, axis: int) -> jax.Array:
    """``y_true`` as int32 class ids (a size-1 class axis dropped), shaped as ``y_pred`` less ``axis``."""
    y_true = jnp.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = jnp.squeeze(y_true, axis)
    if y_true.shape != y_pred.shape[: axis % y_pred.ndim] + y_pred.shape[axis % y_pred.ndim + 1 :]:
        raise ValueError(
            f"sparse_categorical_crossentropy expects integer class ids shaped like the predictions "
            f"without their class axis, got y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
        )
    return y_true.astype(jnp.int32)


def sparse_categorical_crossentropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> jax.Array:
    """Crossentropy against integer class ids; entries equal to ``ignore_class`` give 0."""
    y_pred = jnp.asarray(y_pred).astype(float_dtype(y_pred))
    labels = sparse_labels(y_true, y_pred, axis)
    valid = None if ignore_class is None else labels != ignore_class
    if valid is not None:
        labels = jnp.where(valid, labels, 0)
    one_hot = jax.nn.one_hot(labels, y_pred.shape[axis], dtype=y_pred.dtype, axis=axis)
    res = -jnp.sum(one_hot * _log_probs(y_pred, from_logits, axis), axis=axis)
    return res if valid is None else jnp.where(valid, res, 0.0)


# Keras short aliases
mse = mean_squared_error
mae = mean_absolute_error
mape = mean_absolute_percentage_error
msle = mean_squared_logarithmic_error
kld = kl_divergence
bce = binary_crossentropy
