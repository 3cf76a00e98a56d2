"""Keras's JAX-backend ``predict_step(self, state, data)``, run by ``predict``.

Keras's form takes ``state = (trainable_variables, non_trainable_variables)`` and the
batch's inputs, and returns ``(outputs, non_trainable_variables)``; Keras keeps the
returned non-trainable values in the model after ``predict``. :func:`keras_predict_function`
wraps the bound step as a pure ``(params, state, x) -> (outputs, state)`` over fit's
pytrees, so ``predict`` jits it as it jits the model's own inference function. Inside the
step ``stateless_call`` starts from the traced trees (the scope a Keras-form train step
uses), and a random model's seed state is its last non-trainable value, as in
``stateless_call``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from dagjax.model._stateless import read_variables, seed_state, write_variables
from dagjax.training.core._keras_step import StepOptimizer, cast_like, keras_data


def keras_predict_function(model: Any, step: Callable) -> Callable:
    """``(params, state, x) -> (outputs, state)`` running the model's bound Keras-form ``step``."""
    method = f"{type(model).__name__}.predict_step"

    def run(params: dict, state: dict, x: list) -> tuple[Any, dict]:
        trainable, frozen = read_variables(model, params, state)
        seeds = [jnp.asarray(s.value) for s in seed_state(model)]
        scope = StepOptimizer(model, None, params, state, None)  # stateless_call reads the traced trees
        previous, model.step_optimizer = model.step_optimizer, scope
        try:
            result = step((trainable, frozen + seeds), keras_data(model, x, None, None)[0])
        finally:
            model.step_optimizer = previous
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(
                f"{method} must return (outputs, non_trainable_variables), as Keras's JAX backend; got "
                f"{type(result).__name__}."
            )
        outputs, new_frozen = result
        expected = len(frozen) + len(seeds)
        listed = isinstance(new_frozen, (tuple, list))
        if not listed or len(new_frozen) != expected:
            got = f"{len(new_frozen)} values" if listed else type(new_frozen).__name__
            raise ValueError(
                f"{method} must return (outputs, non_trainable_variables), one value per non-trainable "
                f"variable ({expected}, in the order the state gave them); got {got} as the second value."
            )
        new_frozen = cast_like(list(new_frozen)[: len(frozen)], frozen, "non_trainable_variables")
        return outputs, write_variables(model, params, state, trainable, new_frozen, method)[1]

    return run
