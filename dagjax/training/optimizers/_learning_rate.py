"""The learning rate (and other hyperparameters) kept in an optimizer's state, and ``model.optimizer``'s view.

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
    return set_hyperparams(opt_state, {"learning_rate": value})


def injected_names(opt_state: optax.OptState) -> set[str]:
    """The names of the hyperparameters kept in ``opt_state`` (``inject_hyperparams``), schedules included."""
    leaves = jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, _INJECTED))
    return {name for s in leaves if isinstance(s, _INJECTED) for name in s.hyperparams}


def set_hyperparams(opt_state: optax.OptState, values: dict) -> optax.OptState:
    """``opt_state`` with the injected hyperparameters ``values`` (name -> value) replaced.

    A value may have any shape: a population's states, stacked on a leading
    member axis, take one value per member. A name the state does not hold
    is left out (see :func:`injected_names`); one that follows a schedule fails.
    """

    def replace(node):
        if not isinstance(node, _INJECTED):
            return node
        scheduled = [name for name in values if name in getattr(node, "hyperparams_states", {})]
        if scheduled:
            what = "The learning rate" if scheduled[0] == "learning_rate" else f"'{scheduled[0]}'"
            raise ValueError(
                f"{what} follows a schedule, so it cannot be set; "
                "build the optimizer with a float value to change it between steps."
            )
        new = {
            name: jnp.asarray(values[name], old.dtype) if name in values else old
            for name, old in node.hyperparams.items()
        }
        return node._replace(hyperparams=new)

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
