"""The metric protocol and weighted means, shared by every metric.

A metric object holds only configuration; ``init`` / ``update`` / ``result``
are pure functions of a state pytree of float32 arrays, so the train step can
carry metric state through ``jit`` and ``lax.scan``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from dagjax._naming import to_snake_case
from dagjax.training.objectives._loss_functions import align_ranks, divide_no_nan


class Metric:
    """A metric as pure functions over a state pytree; subclasses define all three.

    ``_direction`` is Keras's: "up" where higher is better (accuracies), "down" where
    lower is (errors, losses), None where neither (counts, plain means).
    """

    _direction: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_arguments(cls.__init__)

    def __init__(self, name: str | None = None) -> None:
        self.name = name or to_snake_case(type(self).__name__)

    def get_config(self) -> dict:
        """The arguments the metric was made with (its name included), as Keras's ``get_config``."""
        return {**getattr(self, "_arguments", {}), "name": self.name}

    @property
    def direction(self) -> str | None:
        """Keras's direction: "up" if higher values are better, "down" if lower are, else None."""
        return self._direction

    def init(self) -> dict[str, jax.Array]:
        """The zero state: a pytree of float32 arrays."""
        raise NotImplementedError(f"{type(self).__name__} must implement init().")

    def update(
        self,
        state: dict[str, jax.Array],
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> dict[str, jax.Array]:
        """The state after accumulating one batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement update().")

    def result(self, state: dict[str, jax.Array]) -> jax.Array:
        """The metric value of the accumulated state."""
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _recording_arguments(init: Callable) -> Callable:
    """``init``, keeping the arguments of the outermost constructor call as ``self._arguments``.

    Keras's auto-config idea: every metric can say how it was made without
    writing a ``get_config`` per class; a subclass's ``super().__init__`` call
    leaves the record of the call that made the object untouched.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def record_then_init(self, *args: Any, **kwargs: Any) -> None:
        if "_arguments" not in vars(self):
            bound = signature.bind(self, *args, **kwargs).arguments
            rest = [p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD]
            self._arguments = {
                **{k: v for k, v in list(bound.items())[1:] if k not in rest},
                **{k: v for name in rest for k, v in bound.get(name, {}).items()},
            }
        init(self, *args, **kwargs)

    return record_then_init


# Weighted means ------------------------------------------------------------------------------------


def weighted_sum_and_count(
    values: ArrayLike, sample_weight: ArrayLike | None = None
) -> tuple[jax.Array, jax.Array]:
    """Keras's per-sample reduction: ``(sum(w * mean_per_sample(values)), sum(w))``.

    Values are averaged over the axes the weights do not cover, then weighted; entries of
    weight 0 (such as padding rows) add exactly 0, even where their value is not finite.
    """
    values = jnp.asarray(values, jnp.float32)
    if sample_weight is None:
        count = values.shape[0] if values.ndim else 1
        return jnp.sum(_mean_over_trailing(values, 1)), jnp.asarray(count, jnp.float32)
    weights = jnp.asarray(sample_weight, jnp.float32)
    values, weights = align_ranks(values, weights)
    values = _mean_over_trailing(values, weights.ndim)
    weights = jnp.broadcast_to(weights, values.shape)
    values = _mean_over_trailing(jnp.where(weights != 0, values * weights, 0.0), 1)
    return jnp.sum(values), jnp.sum(_mean_over_trailing(weights, 1))


def _mean_over_trailing(x, keep: int):
    """``x`` averaged over every axis from ``keep`` on."""
    return jnp.mean(x, axis=tuple(range(keep, x.ndim))) if x.ndim > keep else x


class Mean(Metric):
    """The weighted mean of the values given to ``update(state, values, sample_weight)``."""

    def __init__(self, name: str = "mean") -> None:
        super().__init__(name)

    def init(self) -> dict[str, jax.Array]:
        """A zero weighted ``total`` and ``count``."""
        return {"total": jnp.zeros((), jnp.float32), "count": jnp.zeros((), jnp.float32)}

    def update(
        self, state: dict[str, jax.Array], values: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> dict[str, jax.Array]:
        """Add the batch's weighted sum of ``values`` to ``total`` and its summed weight to ``count``."""
        total, count = weighted_sum_and_count(values, sample_weight)
        return {"total": state["total"] + total, "count": state["count"] + count}

    def result(self, state: dict[str, jax.Array]) -> jax.Array:
        """``total / count``, 0 while nothing has been counted."""
        return divide_no_nan(state["total"], state["count"])


class MeanMetricWrapper(Mean):
    """The weighted mean of ``fn(y_true, y_pred, **kwargs)``, a per-sample function."""

    def __init__(self, fn: Callable, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name or to_snake_case(getattr(fn, "__name__", type(fn).__name__)))
        self.fn = fn
        self.fn_kwargs = kwargs

    def update(
        self,
        state: dict[str, jax.Array],
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> dict[str, jax.Array]:
        """Accumulate ``fn``'s per-sample values as ``Mean`` does; a per-batch scalar counts once a batch."""
        values = self.fn(y_true, y_pred, **self.fn_kwargs)
        if jnp.ndim(values) == 0:
            return self._update_by_batch(state, values, sample_weight)
        return Mean.update(self, state, values, sample_weight)

    def _update_by_batch(self, state, value, sample_weight):
        """A function that returns one number per batch: Keras counts that number once per batch.

        A batch that is all padding (weight 0 everywhere) counts for nothing;
        on a padded last batch the number covers the padding rows too.
        """
        if sample_weight is None:
            return {"total": state["total"] + value, "count": state["count"] + 1.0}
        counted = jnp.any(jnp.asarray(sample_weight) != 0)
        total = state["total"] + jnp.where(counted, value, 0.0)
        return {"total": total, "count": state["count"] + counted.astype(jnp.float32)}
