"""Keras's JAX-backend ``model.stateless_call``: the model as a pure function of its variable lists.

``stateless_call(trainable_variables, non_trainable_variables, inputs, training=...)`` takes
the arrays of ``model.trainable_variables`` and ``model.non_trainable_variables`` (in that
order), puts them in the params and state pytrees, runs the pure ``apply`` and returns
``(outputs, new non_trainable values)``. Nothing is read from or written to the model, so it
can be traced under ``jax.grad`` and ``jax.jit`` as Keras's can; it is ``apply`` spoken in
Keras's list form, for loops written against Keras's JAX backend.

Randomness follows Keras: a model with random layers (Dropout...) has one more
non-trainable variable, its seed state (``seed_generator_state``, two uint32, as Keras's
``SeedGenerator``). A training call draws its rng from that state and returns the state
advanced, so a loop that threads the non-trainable values gets new dropout masks each step,
with no hidden state.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax._naming import default_seed
from dagjax.layers import Variable
from dagjax.layers._variables import replaced


class SeedState:
    """A random model's seed state, as Keras's ``seed_generator_state`` variable: ``value``, ``numpy()``."""

    name = "seed_generator_state"
    path = "seed_generator/seed_generator_state"
    trainable = False
    shape = (2,)
    dtype = "uint32"

    def __init__(self) -> None:
        self.value = jax.random.key_data(jax.random.key(default_seed()))

    def numpy(self) -> np.ndarray:
        return np.asarray(self.value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.value, dtype)

    def __repr__(self) -> str:
        return f"<SeedState path={self.path} value={self.numpy().tolist()}>"


def draws_random(model: Any) -> bool:
    """Whether any layer of ``model`` (nested models searched) draws random numbers in training."""
    for layer in getattr(model, "layers", ()):
        if layer is model:
            continue
        if hasattr(layer, "weights_view") and hasattr(layer, "layers"):
            if draws_random(layer):
                return True
        elif layer.uses_rng or layer.__dict__.get("_draws_random", False):
            return True
    return False


def seed_state(model: Any) -> list[SeedState]:
    """``[the model's SeedState]`` for a model with random layers, else ``[]``."""
    if not draws_random(model):
        return []
    if "_seed_state" not in model.__dict__:
        model.__dict__["_seed_state"] = SeedState()
    return [model.__dict__["_seed_state"]]


def _value(v: Any) -> Any:
    return v.value if isinstance(v, (Variable, SeedState)) else jnp.asarray(v)


def read_variables(model: Any, params: dict, state: dict) -> tuple[list, list]:
    """The values of ``model.trainable_weights`` and ``model.non_trainable_weights`` in these pytrees."""
    trees = {"params": params, "state": state}
    read = lambda variables: [_leaf(trees[v.collection], v._location()[1]) for v in variables]
    return read(model.trainable_weights), read(model.non_trainable_weights)


def write_variables(
    model: Any, params: dict, state: dict, trainable: list, non_trainable: list, caller: str
) -> tuple[dict, dict]:
    """``(params, state)`` with the values of the weight lists put at their variables' paths (shapes checked).

    ``caller`` names the Keras method whose arguments these are, for the errors.
    """
    variables = model.trainable_weights + model.non_trainable_weights
    trees = {"params": params, "state": state}
    for variable, value in zip(variables, [_value(v) for v in list(trainable) + list(non_trainable)]):
        if tuple(jnp.shape(value)) != tuple(variable.shape):
            raise ValueError(
                f"Model '{model.name}'.{caller}: variable '{variable.path}' has shape "
                f"{variable.shape}, got a value of shape {tuple(jnp.shape(value))}."
            )
        trees[variable.collection] = replaced(trees[variable.collection], variable._location()[1], value)
    return trees["params"], trees["state"]


def _leaf(tree: dict, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def check_lengths(model: Any, trainable_variables: list, non_trainable_variables: list, caller: str) -> None:
    """Raise, naming ``caller``, unless the lists are as long as ``model``'s variable lists."""
    for given, expected, what in (
        (trainable_variables, len(model.trainable_variables), "trainable_variables"),
        (non_trainable_variables, len(model.non_trainable_variables), "non_trainable_variables"),
    ):
        if len(given) != expected:
            raise ValueError(
                f"Model '{model.name}'.{caller}: {what} has {len(given)} entries, the model has "
                f"{expected} (pass the values of model.{what}, in that order)."
            )


def stateless_call(
    model: Any,
    trainable_variables: list,
    non_trainable_variables: list,
    inputs: Any,
    training: bool = False,
    return_losses: bool = False,
) -> tuple:
    """``(outputs, non_trainable values after the call)``: ``model.apply`` over Keras's variable lists.

    ``return_losses``: also the losses the forward pass added (``add_loss``, activity regularizers), as
    Keras's: a list holding their sum, or empty. Without it, inside a Keras-form step they are
    recorded as dropped, so that ``compute_loss`` refuses rather than leave them out as Keras does.
    """
    check_lengths(model, trainable_variables, non_trainable_variables, "stateless_call")
    seeded = bool(seed_state(model))
    frozen = list(non_trainable_variables)[: len(non_trainable_variables) - seeded]
    scope = getattr(model, "step_optimizer", None)  # inside fit's traced step: the weights fit holds
    params, state = (scope.params, scope.state) if scope is not None else model.weights_view()
    params, state = write_variables(model, params, state, trainable_variables, frozen, "stateless_call")
    rng, new_seeds = None, []
    if seeded:
        seed = jnp.asarray(_value(non_trainable_variables[-1]), jnp.uint32)
        rng, following = jax.random.split(jax.random.wrap_key_data(seed))
        new_seeds = [jax.random.key_data(following) if training else seed]
    outputs, new_state, penalty = model.apply_with_penalty(params, state, inputs, training=training, rng=rng)
    losses = [] if isinstance(penalty, float) else [penalty]  # a Python 0.0: the forward pass added none
    new_values = read_variables(model, params, new_state)[1] + new_seeds
    if return_losses:
        return outputs, new_values, losses
    if losses and scope is not None:
        scope.dropped_losses = True
    return outputs, new_values
