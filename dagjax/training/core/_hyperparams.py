"""What a train step may take as traced values in place of ``compile``'s and the layers' numbers.

``hyperparams`` given to ``train_step`` / ``eval_step`` is a dict with any of

- ``"loss_weights"``: one weight per output, an array of shape ``(outputs,)``;
- ``"layers"``: a tree shaped as ``model.tunable()`` with traced values at
  some of its leaves: ``{"dropout": {"rate": r}, "dense": {"kernel": {"l2": f}}}``.

Whatever is left out keeps its compiled number, so a step without
``hyperparams`` is the very program it always was. With them, one compiled
step serves every value: a population ``vmap``s it over its members' values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

STEP_HYPERPARAMS = ("loss_weights", "layers")


def _check_layers(given: dict, tunable: dict, path: str = "") -> None:
    """Raise, naming it, for an entry of ``given`` that is not in the model's ``tunable()`` tree."""
    for key, value in given.items():
        if key not in tunable:
            known = ", ".join(sorted(tunable)) or "none"
            raise ValueError(
                f"hyperparams['layers'] names '{path}{key}', which the model cannot take as a traced value; "
                f"{'there' if path else 'the model'} it can: {known} (see model.tunable())."
            )
        if isinstance(value, dict) != isinstance(tunable[key], dict):
            expected = "a dict" if isinstance(tunable[key], dict) else "one value"
            raise ValueError(f"hyperparams['layers'] at '{path}{key}' must be {expected}.")
        if isinstance(value, dict):
            _check_layers(value, tunable[key], f"{path}{key}/")


def step_values(
    hyperparams: dict | None, loss_weights: Sequence[float], names: Sequence[str], tunable: dict
) -> tuple[Any, dict | None]:
    """``(loss weights, layers' traced values)`` for a step: those given, else compile's weights and None."""
    if hyperparams is None:
        return loss_weights, None
    unknown = sorted(set(hyperparams) - set(STEP_HYPERPARAMS))
    if unknown:
        takes = ", ".join(STEP_HYPERPARAMS)
        raise ValueError(f"Unknown step hyperparameters {unknown}; the step takes: {takes}.")
    weights = hyperparams.get("loss_weights", loss_weights)
    if jnp.shape(weights) != (len(names),):
        raise ValueError(
            f"hyperparams['loss_weights'] needs one weight per output {list(names)}, "
            f"got shape {jnp.shape(weights)}."
        )
    layers = hyperparams.get("layers")
    if layers:
        _check_layers(layers, tunable)
    return weights, layers or None
