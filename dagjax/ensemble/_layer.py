"""``WeightedAverage``: the layer that mixes the members' outputs, its weights part of its config.

The weights are configuration, not parameters: they are normalised once, at
construction, to sum to one, saved with the model file, and never trained.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers import Layer


def simplex_weights(weights: Sequence[float], what: str = "weights") -> tuple[float, ...]:
    """``weights`` divided by their sum: checked to be finite, non-negative and not all zero."""
    try:
        values = tuple(float(w) for w in weights)
    except (TypeError, ValueError) as err:  # not a list, or an entry that is not a number
        raise TypeError(f"Ensemble {what} must be a list of numbers, got {weights!r:.80}.") from err
    if not values:
        raise ValueError(f"Ensemble {what} is empty; give one non-negative number per model.")
    if not all(math.isfinite(w) and w >= 0 for w in values):
        raise ValueError(f"Ensemble {what} must be finite and non-negative, got {list(values)}.")
    total = math.fsum(values)
    if total == 0:
        raise ValueError(f"Ensemble {what} are all zero, {list(values)}; make at least one positive.")
    return tuple(w / total for w in values)


class WeightedAverage(Layer):
    """``sum_k coefficients[k] * inputs[k]`` over a list of tensors of one shape.

    ``coefficients``: one non-negative number per input, normalised to sum to one.

    >>> a, b = dj.Input((3,)), dj.Input((3,))
    >>> WeightedAverage([3, 1])([a, b]).shape
    (None, 3)
    """

    def __init__(self, coefficients: Sequence[float], name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.coefficients = simplex_weights(coefficients, "coefficients")

    def check_input(self, *specs: Any) -> None:
        """One list of as many tensors as coefficients, all of one shape."""
        if len(specs) != 1 or not isinstance(specs[0], (list, tuple)):
            raise self.input_error("expects a list of tensors, e.g. layer([a, b])")
        (specs,) = specs
        if len(specs) != len(self.coefficients):
            raise self.input_error(f"has {len(self.coefficients)} coefficients but got {len(specs)} tensors")
        shapes = [tuple(s.shape) for s in specs]
        if any(shape != shapes[0] for shape in shapes):
            raise self.input_error(f"averages tensors of one shape, got {shapes}")

    def call(self, params: dict, inputs: Sequence[jax.Array]) -> jax.Array:
        """The weighted sum of the inputs, in their own float dtype (the coefficients are weakly typed)."""
        return functools.reduce(jnp.add, [w * x for w, x in zip(self.coefficients, inputs)])

    def get_config(self) -> dict:
        """The base config plus the normalised ``coefficients``."""
        return {**super().get_config(), "coefficients": list(self.coefficients)}
