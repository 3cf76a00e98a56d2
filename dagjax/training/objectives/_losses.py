"""Loss objects with Keras 3 names and arguments: per-sample values reduced to a scalar.

Each class (``MeanSquaredError``, ...) wraps one function of
``_loss_functions`` and reduces its values the Keras way
("sum_over_batch_size": weighted sum divided by the number of values).

A ``mask`` of shape ``(batch,)`` marks real rows (1.0) and padding rows (0.0)
added to fill a last batch: padding is zeroed *and* left out of the
denominator, so a padded batch gives exactly the loss of the unpadded one.

>>> loss = MeanSquaredError()
>>> float(loss(jnp.array([[1.0], [0.0]]), jnp.array([[0.5], [0.0]])))
0.125
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from dagjax._naming import to_snake_case
from dagjax.training.objectives._keras_objects import from_object
from dagjax.training.objectives._loss_functions import (
    align_ranks,
    binary_crossentropy,
    categorical_crossentropy,
    categorical_hinge,
    cosine_similarity,
    divide_no_nan,
    expand_to,
    float_dtype,
    hinge,
    huber,
    kl_divergence,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
    poisson,
    sparse_categorical_crossentropy,
    sparse_labels,
    squared_hinge,
)

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


# Reduction ----------------------------------------------------------------------------------------


def reduce_weighted_values(
    values: jax.Array,
    sample_weight: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    reduction: str | None = "sum_over_batch_size",
) -> jax.Array:
    """Weight ``values`` and reduce them the Keras way; ``mask`` drops entries from sums and counts.

    ``mask`` may have the shape of ``values`` or only its leading axes (e.g. ``(batch,)``).
    Masked entries give exactly 0, even where their value is not finite.
    """
    weighted = values
    if sample_weight is not None:
        weighted, weights = expand_to(sample_weight, weighted)
        weighted = weighted * weights
    valid = None
    if mask is not None:
        weighted, valid = expand_to(mask, weighted)
        valid = jnp.broadcast_to(valid, weighted.shape)
        weighted = jnp.where(valid > 0, weighted, 0.0)
    if values.ndim == 0 or reduction in ("none", None):
        return weighted
    total = jnp.sum(weighted)
    if reduction == "sum":
        return total
    count = jnp.sum(valid) if valid is not None else weighted.size
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        weights = jnp.broadcast_to(weights, weighted.shape)
        count = jnp.sum(weights if valid is None else jnp.where(valid > 0, weights, 0.0))
    return divide_no_nan(total, jnp.asarray(count, total.dtype))


# Loss objects -------------------------------------------------------------------------------------


class Loss:
    """A loss: per-sample ``values`` plus a Keras reduction to a scalar.

    Subclasses implement ``call(y_true, y_pred)``. ``mask`` in ``__call__`` has
    shape ``(batch,)``: 1.0 for real samples, 0.0 for padding rows.
    """

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"Invalid reduction {reduction!r} for loss; expected one of {REDUCTIONS}.")
        self.name = name or to_snake_case(type(self).__name__)
        self.reduction = reduction

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
        """Per-sample loss values."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def element_mask(self, y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array | None:
        """Boolean mask over ``values`` of entries that count, or None when all do."""
        return None

    def values(self, y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
        """The Keras loss function's value: one entry per sample (per timestep for sequences)."""
        return self.call(y_true, y_pred)

    def __call__(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> jax.Array:
        """The reduced scalar loss (Keras's "sum_over_batch_size" by default)."""
        values = self.values(y_true, y_pred)
        if values.ndim == 0:
            # A function that returns one number per batch: Keras gives it to every row. On a padded
            # batch it covers the padding rows too (they repeat real samples): that one batch differs
            # slightly from Keras's smaller last batch; per-sample losses are exact.
            values = jnp.broadcast_to(values, (jnp.shape(y_pred)[0],))
        element_mask = self.element_mask(y_true, y_pred)
        if element_mask is not None:
            element_mask = element_mask.astype(values.dtype)
            if mask is not None:
                element_mask, m = expand_to(mask, element_mask)
                element_mask = element_mask * m
            mask = element_mask
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)

    def get_config(self) -> dict:
        """``name`` and ``reduction``, the arguments every Keras loss takes."""
        return {"name": self.name, "reduction": self.reduction}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class LossFunctionWrapper(Loss):
    """A loss from a function ``fn(y_true, y_pred, **kwargs) -> per-sample values``."""

    def __init__(
        self,
        fn: Callable,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name=name or to_snake_case(getattr(fn, "__name__", type(fn).__name__)), reduction=reduction
        )
        self.fn = fn
        self.fn_kwargs = kwargs

    def call(self, y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array:
        """``fn(y_true, y_pred, **kwargs)`` on both cast to y_pred's float type, their ranks aligned."""
        dtype = float_dtype(y_pred)
        y_true, y_pred = align_ranks(jnp.asarray(y_true).astype(dtype), jnp.asarray(y_pred).astype(dtype))
        return self.fn(y_true, y_pred, **self.fn_kwargs)

    def get_config(self) -> dict:
        """The base config plus the keyword arguments given to ``fn`` (``delta``, ``from_logits``...)."""
        return {**super().get_config(), **self.fn_kwargs}


def _loss_class(class_name: str, fn: Callable, default_name: str, doc: str) -> type[LossFunctionWrapper]:
    """A Keras-style loss class over ``fn``, whose only arguments are ``reduction`` and ``name``."""

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = default_name) -> None:
        LossFunctionWrapper.__init__(self, fn, reduction=reduction, name=name)

    namespace = {"__init__": __init__, "__doc__": doc, "__module__": __name__, "__qualname__": class_name}
    return type(class_name, (LossFunctionWrapper,), namespace)


MeanSquaredError = _loss_class(
    "MeanSquaredError", mean_squared_error, "mean_squared_error", "Mean of squared errors."
)
MeanAbsoluteError = _loss_class(
    "MeanAbsoluteError", mean_absolute_error, "mean_absolute_error", "Mean of absolute errors."
)
MeanAbsolutePercentageError = _loss_class(
    "MeanAbsolutePercentageError",
    mean_absolute_percentage_error,
    "mean_absolute_percentage_error",
    "Mean absolute error as a percentage of the target.",
)
MeanSquaredLogarithmicError = _loss_class(
    "MeanSquaredLogarithmicError",
    mean_squared_logarithmic_error,
    "mean_squared_logarithmic_error",
    "Mean squared error of ``log(1 + x)``.",
)
LogCosh = _loss_class("LogCosh", log_cosh, "log_cosh", "Mean of ``log(cosh(error))``.")
Hinge = _loss_class("Hinge", hinge, "hinge", "Hinge loss for labels in {-1, 1} (or {0, 1}).")
SquaredHinge = _loss_class("SquaredHinge", squared_hinge, "squared_hinge", "Squared hinge loss.")
CategoricalHinge = _loss_class(
    "CategoricalHinge", categorical_hinge, "categorical_hinge", "Hinge loss for one-hot targets."
)
KLDivergence = _loss_class(
    "KLDivergence", kl_divergence, "kl_divergence", "Kullback-Leibler divergence from y_true to y_pred."
)
Poisson = _loss_class("Poisson", poisson, "poisson", "Poisson negative log-likelihood (up to a constant).")


class CosineSimilarity(LossFunctionWrapper):
    """Negative cosine similarity along ``axis``."""

    def __init__(
        self, axis: int = -1, reduction: str | None = "sum_over_batch_size", name: str = "cosine_similarity"
    ) -> None:
        super().__init__(cosine_similarity, reduction=reduction, name=name, axis=axis)


class Huber(LossFunctionWrapper):
    """Huber loss: squared error near the target, absolute error beyond ``delta``."""

    def __init__(
        self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size", name: str = "huber_loss"
    ) -> None:
        super().__init__(huber, reduction=reduction, name=name, delta=delta)


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary crossentropy between 0/1 targets and probabilities (or logits)."""

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_crossentropy",
    ) -> None:
        super().__init__(
            binary_crossentropy,
            reduction=reduction,
            name=name,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class CategoricalCrossentropy(LossFunctionWrapper):
    """Crossentropy between one-hot targets and class probabilities (or logits)."""

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_crossentropy",
    ) -> None:
        super().__init__(
            categorical_crossentropy,
            reduction=reduction,
            name=name,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Crossentropy between integer class ids and class probabilities (or logits).

    With ``ignore_class``, entries of that class give 0 and leave the denominator.
    """

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "sparse_categorical_crossentropy",
    ) -> None:
        super().__init__(
            sparse_categorical_crossentropy,
            reduction=reduction,
            name=name,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
        self.ignore_class = ignore_class

    def element_mask(self, y_true: ArrayLike, y_pred: ArrayLike) -> jax.Array | None:
        """False where the label is ``ignore_class`` (left out of the denominator too); None without one."""
        if self.ignore_class is None:
            return None
        y_pred = jnp.asarray(y_pred)
        y_true, y_pred = align_ranks(jnp.asarray(y_true), y_pred)
        return sparse_labels(y_true, y_pred, self.fn_kwargs["axis"]) != self.ignore_class


# Lookup -------------------------------------------------------------------------------------------


_CLASSES = (
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    Huber,
    LogCosh,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
)
_FUNCTION_CLASSES = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "MAPE": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "MSLE": MeanSquaredLogarithmicError,
    "cosine_similarity": CosineSimilarity,
    "huber": Huber,
    "log_cosh": LogCosh,
    "logcosh": LogCosh,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "KLD": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
    "poisson": Poisson,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "BCE": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_BY_CLASS_NAME = {cls.__name__: cls for cls in _CLASSES}


def _crossentropy_for(y_true_shape, y_pred_shape) -> type[Loss]:
    """Keras's choice for "crossentropy": binary, sparse or categorical, by the target/prediction shapes."""
    if y_true_shape is None or y_pred_shape is None:
        raise ValueError(
            'Loss "crossentropy" needs the target and prediction shapes to pick binary, '
            "sparse or categorical crossentropy; pass y_true_shape and y_pred_shape."
        )
    is_binary = y_pred_shape[-1] == 1
    is_sparse = len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1)
    if is_binary:
        return BinaryCrossentropy
    return SparseCategoricalCrossentropy if is_sparse else CategoricalCrossentropy


def get(identifier: Any, y_true_shape: tuple | None = None, y_pred_shape: tuple | None = None) -> Loss | None:
    """A ``Loss`` from a Keras name or class name, a ``Loss``, a function of (y_true, y_pred), or None.

    A string keeps its spelling as the loss's name, as Keras does ("mse" stays "mse").
    "crossentropy"/"ce" picks binary, sparse or categorical crossentropy from the shapes.
    """
    if identifier is None or isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("crossentropy", "ce"):
            return _crossentropy_for(y_true_shape, y_pred_shape)(name=identifier)
        if identifier in _FUNCTION_CLASSES:
            return _FUNCTION_CLASSES[identifier](name=identifier)
        if identifier in _BY_CLASS_NAME:
            return _BY_CLASS_NAME[identifier]()
        valid = sorted(set(_FUNCTION_CLASSES) | set(_BY_CLASS_NAME) | {"crossentropy"})
        raise ValueError(f"Unknown loss {identifier!r}. Valid names: {', '.join(valid)}.")
    return from_object(identifier, Loss, _BY_CLASS_NAME, LossFunctionWrapper, "mse")
