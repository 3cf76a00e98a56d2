"""The learning rate kept in an optimizer's state, and ``model.optimizer``'s view of it.

Keras's optimizers here inject their learning rate into the state
(``optax.inject_hyperparams``), so it can be read and changed between steps
without recompiling:

>>> from dagjax.optimizers import Adam
>>> state = Adam(learning_rate=1e-3).init({"w": jnp.zeros(3)})
>>> get_learning_rate(set_learning_rate(state, 1e-4))
Array(0.0001, dtype=float32)
"""

from __future__ import annotations

import weakref
from typing import Protocol

import jax
import jax.numpy as jnp
import optax

_INJECTED = (optax.InjectStatefulHyperparamsState, optax.InjectHyperparamsState)


def _injected_states(opt_state) -> list:
    leaves = jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, _INJECTED))
    return [s for s in leaves if isinstance(s, _INJECTED) and "learning_rate" in s.hyperparams]


def get_learning_rate(opt_state: optax.OptState) -> jax.Array | None:
    """The learning rate stored in ``opt_state`` (the one used by the last step), or None if there is none."""
    states = _injected_states(opt_state)
    return states[0].hyperparams["learning_rate"] if states else None


def set_learning_rate(opt_state: optax.OptState, value: float) -> optax.OptState:
    """``opt_state`` with its learning rate replaced; the next step uses ``value``, with no recompile."""
    if not _injected_states(opt_state):
        raise ValueError(
            "This optimizer state has no injected learning_rate, so it cannot be read or set between steps. "
            "Build the optimizer with optax.inject_hyperparams, e.g. "
            "optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), or use a dagjax optimizer such as "
            "dagjax.optimizers.Adam()."
        )

    def replace(node):
        if not (isinstance(node, _INJECTED) and "learning_rate" in node.hyperparams):
            return node
        if "learning_rate" in getattr(node, "hyperparams_states", {}):
            raise ValueError(
                "The learning rate follows a schedule, so it cannot be set; "
                "build the optimizer with a float learning rate to change it between steps."
            )
        old = node.hyperparams["learning_rate"]
        return node._replace(hyperparams={**node.hyperparams, "learning_rate": jnp.asarray(value, old.dtype)})

    return jax.tree.map(replace, opt_state, is_leaf=lambda x: isinstance(x, _INJECTED))


class StateOwner(Protocol):
    """What holds an optimizer's state between steps (``fit``'s session): the rate and the step count."""

    iterations: jax.Array

    def get_learning_rate(self) -> jax.Array | None: ...

    def set_learning_rate(self, value: float) -> None: ...


class ModelOptimizer(optax.GradientTransformationExtraArgs):
    """``model.optimizer`` after ``compile``: the optax transformation, plus Keras's attributes.

    ``learning_rate`` reads the rate in the optimizer state (the one the next
    step uses), and assigning it sets that rate, as
    ``model.optimizer.learning_rate = 1e-4`` does in Keras: no recompile.
    ``iterations`` is the number of steps trained.
    """

    @property
    def learning_rate(self) -> jax.Array:
        """The rate that the next step uses (AttributeError if none is injected)."""
        rate = self._owner().get_learning_rate()
        if rate is None:
            raise AttributeError(
                "This optimizer has no learning_rate in its state to read or set: build it with a dagjax "
                "optimizer such as dagjax.optimizers.Adam(), or with optax.inject_hyperparams."
            )
        return rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self._owner().set_learning_rate(value)

    @property
    def iterations(self) -> jax.Array:
        """Steps trained so far (0 before any training), as Keras's."""
        return self._owner().iterations


def bind(tx: optax.GradientTransformation, owner: StateOwner) -> ModelOptimizer:
    """``tx`` as ``model.optimizer``: the same transformation, reading and setting ``owner``'s state."""
    tx = optax.with_extra_args_support(tx)
    bound = ModelOptimizer(tx.init, tx.update)
    bound._owner = weakref.ref(owner)  # the owner holds its optimizer: no reference cycle
    return bound
