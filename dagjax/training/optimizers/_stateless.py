"""Keras's JAX-backend optimizer methods: ``build``, ``variables`` and ``stateless_apply``.

A Keras-style optimizer here is an optax transformation; these methods speak Keras's list
form over it. ``build(variables)`` makes the optimizer state for those weights and keeps it
(with its tree structure) as ``optimizer.variables``; ``stateless_apply(optimizer_variables,
grads, trainable_variables)`` is one pure step, ``(new trainable values, new optimizer
values)``: the state rebuilt from the list, ``update``, ``optax.apply_updates``. Nothing is
mutated, so a loop written for Keras's JAX backend (DLwP 3rd ed., chapter 7) runs as written
and can be jitted.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax


class OptimizerVariable:
    """One array of a built optimizer's state, as a Keras variable: ``name``, ``value``, ``numpy()``."""

    def __init__(self, name: str, value: jax.Array) -> None:
        self.name, self.value = name, value
        self.shape, self.dtype = tuple(value.shape), jnp.dtype(value.dtype).name

    def numpy(self) -> np.ndarray:
        return np.asarray(self.value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value, dtype)

    def __repr__(self) -> str:
        return f"<OptimizerVariable {self.name} shape={self.shape} dtype={self.dtype}>"


def _values(variables: Any) -> list:
    return [getattr(v, "value", v) for v in variables]


class KerasStatelessApply:
    """``build`` / ``variables`` / ``stateless_apply`` for an optax transformation (``init``, ``update``)."""

    init: Any
    update: Any

    def build(self, variables: list) -> None:
        """Make the state for the weights ``variables`` (Keras variables or arrays), as Keras's ``build``."""
        state = self.init(_values(variables))
        paths_and_leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
        held = [OptimizerVariable(jax.tree_util.keystr(path), leaf) for path, leaf in paths_and_leaves]
        self.__dict__["_built"] = (treedef, len(variables), held)

    @property
    def variables(self) -> list[OptimizerVariable]:
        """The state ``build`` made, as a list (empty before ``build``)."""
        built = self.__dict__.get("_built")
        return list(built[2]) if built else []

    def stateless_apply(
        self, optimizer_variables: list, grads: list, trainable_variables: list
    ) -> tuple[list, list]:
        """One step from values alone: ``(new trainable_variables, new optimizer_variables)``, as Keras's."""
        built = self.__dict__.get("_built")
        if built is None:
            raise ValueError(
                "stateless_apply needs the optimizer built first: call "
                "optimizer.build(model.trainable_variables) once, as in Keras."
            )
        treedef, count, held = built
        if len(optimizer_variables) != len(held) or len(grads) != count or len(trainable_variables) != count:
            raise ValueError(
                f"stateless_apply: the optimizer was built for {count} variables and holds {len(held)} "
                f"values; got {len(trainable_variables)} variables, {len(grads)} gradients and "
                f"{len(optimizer_variables)} optimizer values."
            )
        state = jax.tree_util.tree_unflatten(treedef, _values(optimizer_variables))
        params = _values(trainable_variables)
        updates, new_state = self.update(list(grads), state, params)
        return list(optax.apply_updates(params, updates)), jax.tree_util.tree_leaves(new_state)
