"""The metric protocol and weighted means, shared by every metric.

A metric object holds only configuration; ``init`` / ``update`` / ``result``
are pure functions of a state pytree of float32 arrays, so the train step can
carry metric state through ``jit`` and ``lax.scan``.

On top of that pure protocol every metric also has Keras's stateful methods,
``update_state`` / ``result()`` / ``reset_state``, holding one state pytree for
code that accumulates by hand. A subclass may instead be written as in Keras
(``add_variable`` in ``__init__``, ``update_state`` assigning to the variables,
``result()`` reading them): its pure functions then come from running those
methods in a binding scope (``_metric_variables``), so ``compile`` traces it
into the jitted step like any other metric.
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
from dagjax.training.objectives import _metric_variables as variables_scope
from dagjax.training.objectives._loss_functions import align_ranks, divide_no_nan
from dagjax.training.objectives._metric_variables import MetricVariable


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
        if "result" in cls.__dict__:
            cls.result = _result_from_state_or_held(cls.result)

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or to_snake_case(type(self).__name__)
        self.dtype = jnp.dtype(dtype or "float32").name
        self._variables: list[MetricVariable] = []
        self._held: dict | None = None

    def get_config(self) -> dict:
        """The arguments the metric was made with (its name included), as Keras's ``get_config``."""
        return {**getattr(self, "_arguments", {}), "name": self.name}

    @property
    def direction(self) -> str | None:
        """Keras's direction: "up" if higher values are better, "down" if lower are, else None."""
        return self._direction

    def init(self) -> dict[str, jax.Array]:
        """The zero state: a pytree of float32 arrays (Keras-style: the variables after ``reset_state``)."""
        if not self._keras_style():
            raise NotImplementedError(f"{type(self).__name__} must implement init().")
        initial = {key: v.initial_value() for key, v in zip(self._state_keys(), self.variables)}
        with variables_scope.bound_to(self.variables, initial) as reset:
            self.reset_state()
        return reset

    def update(
        self,
        state: dict[str, jax.Array],
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> dict[str, jax.Array]:
        """The state after accumulating one batch (Keras-style: ``update_state`` run bound to ``state``)."""
        if not self._keras_style():
            raise NotImplementedError(f"{type(self).__name__} must implement update().")
        with variables_scope.bound_to(self.variables, state) as new_state:
            self.update_state(y_true, y_pred, sample_weight=sample_weight)
        return new_state

    def result(self, state: dict[str, jax.Array]) -> jax.Array:
        """The metric value of the accumulated state."""
        raise NotImplementedError(f"{type(self).__name__} must implement result().")

    # Keras's stateful interface ---------------------------------------------------------------------

    def add_variable(
        self,
        shape: tuple,
        initializer: Any,
        dtype: Any = None,
        aggregation: str = "sum",
        name: str | None = None,
    ) -> MetricVariable:
        """A new accumulator of the metric's state, as Keras's ``Metric.add_variable``."""
        if not hasattr(self, "_variables"):
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before add_variable()."
            )
        if aggregation not in ("sum", "mean", "none", "only_first_replica"):
            raise ValueError(
                "add_variable aggregation must be 'sum', 'mean', 'none' or 'only_first_replica', "
                f"got {aggregation!r}."
            )
        name = name or f"variable_{len(self._variables)}"
        variable = MetricVariable(name, shape, dtype or self.dtype, initializer)
        self._variables.append(variable)
        return variable

    def add_weight(
        self, shape: tuple = (), initializer: Any = None, dtype: Any = None, name: str | None = None
    ) -> MetricVariable:
        """Keras's older name for :meth:`add_variable` (``initializer`` defaults to zeros)."""
        return self.add_variable(shape, initializer or "zeros", dtype=dtype, name=name)

    @property
    def variables(self) -> list[MetricVariable]:
        """The metric's state as Keras's variables: those ``add_variable`` made, in order; for a metric
        written as pure functions, its held state's arrays (``total``, ``count``...), as read now."""
        if self._keras_style():
            return list(getattr(self, "_variables", []))
        return [variables_scope.holding(key, value) for key, value in self._held_state().items()]

    # Keras's stateless interface: the state as a list of arrays in ``variables`` order ----------------

    def stateless_update_state(self, metric_variables: list, *args: Any, **kwargs: Any) -> list[jax.Array]:
        """The values of ``variables`` after accumulating one batch into ``metric_variables``, as Keras's."""
        new_state = self.update(self._state_of(metric_variables), *args, **kwargs)
        return [new_state[key] for key in self._stateless_keys()]

    def stateless_result(self, metric_variables: list) -> Any:
        """The metric's value for the state ``metric_variables`` (a list in ``variables`` order)."""
        return self.result(self._state_of(metric_variables))

    def stateless_reset_state(self) -> list[jax.Array]:
        """The initial values of ``variables``, as a list."""
        initial = self.init()
        return [initial[key] for key in self._stateless_keys()]

    def assign_variables(self, metric_variables: list) -> None:
        """Hold the state ``metric_variables`` (a list in ``variables`` order), as assigning each of Keras's
        variables does; fit does it after a Keras-form step, as Keras syncs its variables."""
        state = self._state_of(metric_variables)
        if not self._keras_style():
            self._held = state
            return
        for variable, key in zip(self.variables, self._state_keys()):
            variable.assign(state[key])

    def _stateless_keys(self) -> list[str]:
        """The state's keys in ``variables`` order."""
        return self._state_keys() if self._keras_style() else list(self.init())

    def _state_of(self, metric_variables: list) -> dict:
        """``metric_variables`` (arrays or variables, in ``variables`` order) as the state pytree."""
        keys = self._stateless_keys()
        if len(metric_variables) != len(keys):
            raise ValueError(
                f"Metric '{self.name}' has {len(keys)} variables ({', '.join(keys)}), "
                f"got a list of {len(metric_variables)}: pass metric.variables or a list from "
                "stateless_update_state / stateless_reset_state."
            )
        return {k: jnp.asarray(getattr(v, "value", v)) for k, v in zip(keys, metric_variables)}

    def update_state(self, *args: Any, **kwargs: Any) -> None:
        """Accumulate one batch into the held state: ``update`` on it, as Keras's stateful metrics.

        The update is compiled once per input shape: op-by-op dispatch of a metric's
        dozens of small operations costs more than one compile after a few batches.
        """
        if "_compiled_update" not in vars(self):
            self._compiled_update = jax.jit(self.update)
        self._held = self._compiled_update(self._held_state(), *args, **kwargs)

    def reset_state(self) -> None:
        """Forget what was accumulated (a Keras-style metric: every variable back to zeros, as Keras)."""
        if self._keras_style():
            for v in self.variables:
                v.assign(jnp.zeros(v.shape, v.dtype))
        else:
            self._held = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``update_state(...)`` then ``result()``, as calling a Keras metric."""
        self.update_state(*args, **kwargs)
        return self.result()

    def _keras_style(self) -> bool:
        return type(self).update_state is not Metric.update_state

    def _state_keys(self) -> list[str]:
        return variables_scope.state_keys(self.variables)

    def _held_state(self) -> dict:
        """The state the stateful methods accumulate into (the initial state until the first update)."""
        if self._keras_style():
            return variables_scope.held_state(self.variables)
        if getattr(self, "_held", None) is None:
            self._held = self.init()
        return self._held

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _result_from_state_or_held(result: Callable) -> Callable:
    """A subclass's ``result`` callable both ways: ``result(state)`` (pure) and ``result()`` (Keras).

    A pure ``result(self, state)`` called without a state reads the held one; a
    Keras-style ``result(self)`` called with a state reads it through the binding scope.
    """
    takes_state = len(inspect.signature(result).parameters) > 1

    @functools.wraps(result)
    def either_way(self: Metric, state: dict | None = None) -> Any:
        if takes_state:
            return result(self, self._held_state() if state is None else state)
        if state is None:
            return variables_scope.as_result(result(self))
        with variables_scope.bound_to(self.variables, state):
            return variables_scope.as_result(result(self))

    return either_way


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
