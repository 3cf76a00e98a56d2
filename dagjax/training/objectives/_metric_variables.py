"""Keras-style metric variables, and the binding scope that makes them pure inside a traced step.

A metric written as in Keras (``add_variable`` in ``__init__``, ``update_state``
assigning to ``self.total``, ``result`` reading it) runs two ways:

- eagerly, called by the user: each :class:`MetricVariable` holds its value and
  ``assign`` replaces it, as a Keras variable;
- compiled, inside ``fit``/``evaluate``: the train step passes the metric's
  state pytree ``{variable name: array}`` in, :func:`bound_to` makes every read
  of a variable return the traced value and every ``assign`` write a new one
  into the scope, and the scope's values come out as the new state. Nothing is
  mutated, so the metric compiles into the one jitted step (Keras 3's
  ``StatelessScope`` does the same for its ``stateless_update_state``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax import initializers

_BOUND: contextvars.ContextVar[dict | None] = contextvars.ContextVar("metric_bindings", default=None)


class MetricVariable:
    """One accumulator of a Keras-style metric: ``value``, ``assign``, ``assign_add``, ``assign_sub``.

    Arithmetic works on the variable itself (``self.total + x``); jax.numpy
    functions take ``variable.value`` (or ``jnp.asarray(variable)``).
    """

    def __init__(self, name: str, shape: tuple, dtype: Any, initializer: Any) -> None:
        self.name = name
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.initializer = initializers.get(initializer)
        self._value = self.initial_value()

    def initial_value(self) -> jax.Array:
        """The initializer's value (metric initializers are constants: the key is a fixed one)."""
        return jnp.asarray(self.initializer(jax.random.key(0), self.shape, self.dtype), self.dtype)

    @property
    def value(self) -> jax.Array:
        """The traced value inside a binding scope, the held value otherwise."""
        bound = _BOUND.get()
        if bound is not None and id(self) in bound:
            return bound[id(self)]
        return self._value

    def assign(self, value: Any) -> MetricVariable:
        """Replace the value (in the binding scope while one is active), keeping shape and dtype."""
        new = jnp.broadcast_to(jnp.asarray(value, self.dtype), self.shape)
        bound = _BOUND.get()
        if bound is not None and id(self) in bound:
            bound[id(self)] = new
        else:
            self._value = new
        return self

    def assign_add(self, value: Any) -> MetricVariable:
        """``assign(value + increment)``."""
        return self.assign(self.value + jnp.asarray(value, self.dtype))

    def assign_sub(self, value: Any) -> MetricVariable:
        """``assign(value - decrement)``."""
        return self.assign(self.value - jnp.asarray(value, self.dtype))

    def numpy(self) -> np.ndarray:
        """The held value as a numpy array."""
        return np.asarray(self.value)

    def __jax_array__(self) -> jax.Array:
        return self.value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value, dtype)

    def __repr__(self) -> str:
        return f"<MetricVariable {self.name} shape={self.shape} dtype={self.dtype.name}>"


def _forward(op: str) -> Any:
    def method(self: MetricVariable, *args: Any) -> Any:
        return getattr(self.value, op)(*(a.value if isinstance(a, MetricVariable) else a for a in args))

    method.__name__ = op
    return method


for _op in (
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__truediv__",
    "__rtruediv__",
    "__floordiv__",
    "__rfloordiv__",
    "__pow__",
    "__rpow__",
    "__neg__",
    "__pos__",
    "__abs__",
    "__getitem__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "astype",
):
    setattr(MetricVariable, _op, _forward(_op))


def state_keys(variables: list[MetricVariable]) -> list[str]:
    """A unique state key per variable: its name, numbered when two share one."""
    keys: list[str] = []
    for v in variables:
        key, n = v.name, 1
        while key in keys:
            key, n = f"{v.name}_{n}", n + 1
        keys.append(key)
    return keys


@contextlib.contextmanager
def bound_to(variables: list[MetricVariable], state: dict) -> Iterator[dict]:
    """Within the block, ``variables`` read and assign ``state``'s values; yields the new state at exit."""
    keys = state_keys(variables)
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"The metric state lacks the variables {missing} (it has {sorted(state)}).")
    outer = _BOUND.get() or {}
    scope = {**outer, **{id(v): jnp.asarray(state[k]) for v, k in zip(variables, keys)}}
    token = _BOUND.set(scope)
    new_state: dict = {}
    try:
        yield new_state
    finally:
        _BOUND.reset(token)
    new_state.update({k: scope[id(v)] for v, k in zip(variables, keys)})


def holding(name: str, value: Any) -> MetricVariable:
    """A variable named ``name`` that holds ``value`` (a pure metric's state, shown as Keras's variables)."""
    value = jnp.asarray(value)
    variable = MetricVariable(name, value.shape, value.dtype, "zeros")
    variable._value = value
    return variable


def held_state(variables: list[MetricVariable]) -> dict:
    """The variables' held values as a state pytree."""
    return {k: v.value for v, k in zip(variables, state_keys(variables))}


def as_result(value: Any) -> Any:
    """A ``result()`` return value as arrays (a variable becomes its value; dicts keep their keys)."""
    return jax.tree_util.tree_map(
        lambda x: x.value if isinstance(x, MetricVariable) else jnp.asarray(x),
        value,
        is_leaf=lambda x: isinstance(x, MetricVariable),
    )
