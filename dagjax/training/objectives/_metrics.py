"""Metrics with Keras 3 names and numerics, as pure ``init`` / ``update`` / ``result`` functions.

A metric object holds only configuration. Its running state is a pytree of
float32 arrays that the train step carries through ``jit`` or ``lax.scan``:

>>> acc = BinaryAccuracy()
>>> state = acc.init()
>>> state = acc.update(state, jnp.array([1.0, 0.0]), jnp.array([0.9, 0.8]))
>>> float(acc.result(state))
0.5

``sample_weight`` has shape ``(batch,)`` (or broadcasts like Keras's); rows
with weight 0, such as the padding rows that fill a last batch, do not count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from dagjax._naming import to_snake_case
from dagjax.training.objectives import _loss_functions as lf
from dagjax.training.objectives._confusion_metrics import CONFUSION_METRICS
from dagjax.training.objectives._keras_objects import from_object
from dagjax.training.objectives._loss_functions import align_ranks, l2_normalize
from dagjax.training.objectives._metric_base import Mean, MeanMetricWrapper, Metric


def _mean_metric_class(
    class_name: str, fn: Callable, default_name: str, doc: str, direction: str
) -> type[MeanMetricWrapper]:
    """A Keras-style mean metric class over ``fn``, whose only argument is ``name``."""

    def __init__(self, name: str = default_name) -> None:
        MeanMetricWrapper.__init__(self, fn, name=name)

    namespace = {
        "__init__": __init__,
        "__doc__": doc,
        "_direction": direction,
        "__module__": __name__,
        "__qualname__": class_name,
    }
    return type(class_name, (MeanMetricWrapper,), namespace)


# Accuracy functions ---------------------------------------------------------------------------------


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """1.0 where the prediction equals the label exactly."""
    y_pred = jnp.asarray(y_pred)
    y_true, y_pred = align_ranks(jnp.asarray(y_true).astype(y_pred.dtype), y_pred)
    return (y_true == y_pred).astype(jnp.float32)


def binary_accuracy(y_true: ArrayLike, y_pred: ArrayLike, threshold: float = 0.5) -> jax.Array:
    """1.0 where ``y_pred > threshold`` matches the 0/1 label."""
    y_true, y_pred = align_ranks(jnp.asarray(y_true), jnp.asarray(y_pred))
    return (y_true == (y_pred > threshold).astype(y_true.dtype)).astype(jnp.float32)


def _argmax_matches(labels: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """1.0 where the arg-max prediction equals the integer label; a trailing label axis of 1 is kept."""
    y_pred = jnp.asarray(y_pred)
    labels = jnp.asarray(labels).astype(y_pred.dtype)
    shape = labels.shape
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = jnp.squeeze(labels, -1)
    matches = (labels == jnp.argmax(y_pred, axis=-1).astype(labels.dtype)).astype(jnp.float32)
    return jnp.reshape(matches, shape) if labels.shape != shape else matches


def categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """1.0 where the arg-max prediction is the arg-max of the one-hot label."""
    return _argmax_matches(jnp.argmax(jnp.asarray(y_true), axis=-1), y_pred)


def sparse_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
    """1.0 where the arg-max prediction is the integer label."""
    matches = _argmax_matches(y_true, y_pred)
    return jnp.squeeze(matches, -1) if matches.ndim > 1 and matches.shape[-1] == 1 else matches


def in_top_k(labels: jax.Array, y_pred: jax.Array, k: int) -> jax.Array:
    """True where fewer than ``k`` scores beat the label's score (ties count in its favour)."""
    at_label = jnp.take_along_axis(y_pred, labels[..., None], axis=-1)
    at_label = jnp.where(jnp.isnan(at_label), -jnp.inf, at_label)
    return 1 + jnp.sum(y_pred > at_label, axis=-1) <= k


def sparse_top_k_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike, k: int = 5) -> jax.Array:
    """1.0 where the integer label is among the ``k`` highest predictions."""
    y_pred = jnp.asarray(y_pred)
    labels = jnp.asarray(y_true).astype(jnp.int32)
    shape = labels.shape
    matches = in_top_k(labels.reshape(-1), y_pred.reshape(-1, y_pred.shape[-1]), k)
    return matches.astype(jnp.float32).reshape(shape)


def top_k_categorical_accuracy(y_true: ArrayLike, y_pred: ArrayLike, k: int = 5) -> jax.Array:
    """1.0 where the one-hot label's class is among the ``k`` highest predictions."""
    return sparse_top_k_categorical_accuracy(jnp.argmax(jnp.asarray(y_true), axis=-1), y_pred, k)


def cosine_similarity(y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1) -> jax.Array:
    """``sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)``: 1 is most similar."""
    y_pred = jnp.asarray(y_pred, jnp.float32)
    y_true, y_pred = align_ranks(jnp.asarray(y_true, jnp.float32), y_pred)
    return jnp.sum(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis), axis=axis)


# Mean metric classes ---------------------------------------------------------------------------------

Accuracy = _mean_metric_class("Accuracy", accuracy, "accuracy", "How often predictions equal labels.", "up")
CategoricalAccuracy = _mean_metric_class(
    "CategoricalAccuracy",
    categorical_accuracy,
    "categorical_accuracy",
    "How often the arg-max prediction matches a one-hot label.",
    "up",
)
SparseCategoricalAccuracy = _mean_metric_class(
    "SparseCategoricalAccuracy",
    sparse_categorical_accuracy,
    "sparse_categorical_accuracy",
    "How often the arg-max prediction matches an integer label.",
    "up",
)
MeanSquaredError = _mean_metric_class(
    "MeanSquaredError", lf.mean_squared_error, "mean_squared_error", "Mean squared error.", "down"
)
MeanAbsoluteError = _mean_metric_class(
    "MeanAbsoluteError", lf.mean_absolute_error, "mean_absolute_error", "Mean absolute error.", "down"
)
MeanAbsolutePercentageError = _mean_metric_class(
    "MeanAbsolutePercentageError",
    lf.mean_absolute_percentage_error,
    "mean_absolute_percentage_error",
    "Mean absolute percentage error.",
    "down",
)
MeanSquaredLogarithmicError = _mean_metric_class(
    "MeanSquaredLogarithmicError",
    lf.mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error",
    "Mean squared logarithmic error.",
    "down",
)
LogCoshError = _mean_metric_class("LogCoshError", lf.log_cosh, "logcosh", "Mean log-cosh error.", "down")
Hinge = _mean_metric_class("Hinge", lf.hinge, "hinge", "Mean hinge loss.", "down")
SquaredHinge = _mean_metric_class(
    "SquaredHinge", lf.squared_hinge, "squared_hinge", "Mean squared hinge loss.", "down"
)
CategoricalHinge = _mean_metric_class(
    "CategoricalHinge", lf.categorical_hinge, "categorical_hinge", "Mean categorical hinge loss.", "down"
)
KLDivergence = _mean_metric_class(
    "KLDivergence", lf.kl_divergence, "kl_divergence", "Mean Kullback-Leibler divergence.", "down"
)
Poisson = _mean_metric_class("Poisson", lf.poisson, "poisson", "Mean Poisson loss.", "down")


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches a 0/1 label."""

    _direction = "up"

    def __init__(self, name: str = "binary_accuracy", threshold: float = 0.5) -> None:
        super().__init__(binary_accuracy, name=name, threshold=threshold)
        self.threshold = threshold


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often a one-hot label's class is among the ``k`` highest predictions."""

    _direction = "up"

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy") -> None:
        super().__init__(top_k_categorical_accuracy, name=name, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often an integer label is among the ``k`` highest predictions."""

    _direction = "up"

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy") -> None:
        super().__init__(sparse_top_k_categorical_accuracy, name=name, k=k)
        self.k = k


class CosineSimilarity(MeanMetricWrapper):
    """Mean cosine similarity along ``axis`` (1 is most similar)."""

    _direction = "up"

    def __init__(self, name: str = "cosine_similarity", axis: int = -1) -> None:
        super().__init__(cosine_similarity, name=name, axis=axis)


class BinaryCrossentropy(MeanMetricWrapper):
    """Mean binary crossentropy."""

    _direction = "down"

    def __init__(
        self, name: str = "binary_crossentropy", from_logits: bool = False, label_smoothing: float = 0.0
    ) -> None:
        super().__init__(
            lf.binary_crossentropy, name=name, from_logits=from_logits, label_smoothing=label_smoothing
        )


class CategoricalCrossentropy(MeanMetricWrapper):
    """Mean categorical crossentropy."""

    _direction = "down"

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
    ) -> None:
        super().__init__(
            lf.categorical_crossentropy,
            name=name,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Mean sparse categorical crossentropy; entries of ``ignore_class`` neither add nor count."""

    _direction = "down"

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
    ) -> None:
        super().__init__(
            lf.sparse_categorical_crossentropy,
            name=name,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
        self.ignore_class = ignore_class

    def update(
        self,
        state: dict[str, jax.Array],
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> dict[str, jax.Array]:
        """Entries labelled ``ignore_class`` get weight 0, so they neither add to the mean nor count."""
        if self.ignore_class is not None:
            labels = lf.sparse_labels(y_true, jnp.asarray(y_pred), self.fn_kwargs["axis"])
            valid = (labels != self.ignore_class).astype(jnp.float32)
            if sample_weight is not None:
                valid, weights = lf.expand_to(sample_weight, valid)
                valid = valid * weights
            sample_weight = valid
        return super().update(state, y_true, y_pred, sample_weight)


class RootMeanSquaredError(Mean):
    """Square root of the weighted mean squared error."""

    _direction = "down"

    def __init__(self, name: str = "root_mean_squared_error") -> None:
        super().__init__(name)

    def update(
        self,
        state: dict[str, jax.Array],
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> dict[str, jax.Array]:
        """Accumulate the weighted mean of the squared errors, in float32."""
        y_pred = jnp.asarray(y_pred, jnp.float32)
        y_true, y_pred = align_ranks(jnp.asarray(y_true, jnp.float32), y_pred)
        return super().update(state, jnp.square(y_pred - y_true), sample_weight)

    def result(self, state: dict[str, jax.Array]) -> jax.Array:
        """The square root of the weighted mean squared error."""
        return jnp.sqrt(super().result(state))


# Lookup ------------------------------------------------------------------------------------------------


def _accuracy_for(y_true_shape, y_pred_shape) -> type[Metric]:
    """Keras's choice for "accuracy": binary, sparse or categorical, by the target/prediction shapes."""
    if y_true_shape is None or y_pred_shape is None:
        raise ValueError(
            'Metric "accuracy" needs the target and prediction shapes to pick binary, sparse or '
            "categorical accuracy; pass y_true_shape and y_pred_shape."
        )
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    if y_pred_shape[-1] == 1:
        return BinaryAccuracy
    is_sparse = len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1)
    return SparseCategoricalAccuracy if is_sparse else CategoricalAccuracy


def get(identifier: Any, y_true_shape: tuple | None = None, y_pred_shape: tuple | None = None) -> Metric:
    """A ``Metric`` from a Keras name, a ``Metric``, or a function (y_true, y_pred) -> per-sample values.

    "accuracy"/"acc" picks binary, sparse or categorical accuracy from the shapes,
    as Keras 3 does. A string keeps its spelling as the metric's name ("acc" logs as "acc").
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return _accuracy_for(y_true_shape, y_pred_shape)(name=identifier)
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown metric {identifier!r}. Valid names: {', '.join(sorted(_BY_NAME))}.")
        return _BY_NAME[identifier](name=identifier)
    return from_object(identifier, Metric, _BY_NAME, MeanMetricWrapper, "accuracy")


_MEAN_METRICS = (
    Mean,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    LogCoshError,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
_ALIASES = {
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
}


_CLASSES = _MEAN_METRICS + CONFUSION_METRICS
# Keras's lookup table: class names, their snake_case forms, and the short aliases.
_BY_NAME: dict[str, type[Metric]] = {
    **{c.__name__: c for c in _CLASSES},
    **{to_snake_case(c.__name__): c for c in _CLASSES},
    **_ALIASES,
}
