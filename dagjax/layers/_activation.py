"""Activation layers with arguments: ReLU, LeakyReLU, ELU, Softmax, and PReLU (which learns its slopes).

The first four apply one function of ``dagjax.activations`` with the
keyword arguments the layer was made with; ``ARGUMENTS`` names them once,
for the call and for the config alike.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import jax.numpy as jnp

from dagjax import activations, initializers, regularizers
from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec, WeightSpec


class _Elementwise(Layer):
    """``FUNCTION(x, **{name: self.name for name in ARGUMENTS})``: no weights, the input's shape and dtype."""

    supports_masking = True  # as Keras: the input's mask passes through unchanged
    FUNCTION: Any = None
    ARGUMENTS: tuple[str, ...] = ()

    def _arguments(self) -> dict:
        return {name: getattr(self, name) for name in self.ARGUMENTS}

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape and dtype."""
        return TensorSpec(spec.shape, spec.dtype)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The function, with the layer's arguments."""
        return type(self).FUNCTION(x, **self._arguments())

    def get_config(self) -> dict:
        """The base config plus the function's arguments."""
        return {**super().get_config(), **self._arguments()}


def _non_negative(layer: str, **values: float | None) -> None:
    for name, value in values.items():
        if value is None or value < 0:
            raise ValueError(f"{layer} {name} must be a number >= 0, got {value!r}.")


class ReLU(_Elementwise):
    """``x`` above ``threshold``, capped at ``max_value``; ``negative_slope * (x - threshold)`` below."""

    FUNCTION = activations.relu
    ARGUMENTS = ("max_value", "negative_slope", "threshold")

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        _non_negative("ReLU", negative_slope=negative_slope, threshold=threshold)
        if max_value is not None:
            _non_negative("ReLU", max_value=max_value)
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold


class LeakyReLU(_Elementwise):
    """``x`` for ``x >= 0``, else ``negative_slope * x`` (Keras 3's default slope: 0.3)."""

    FUNCTION = activations.leaky_relu
    ARGUMENTS = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.3, name: str | None = None, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2)
        super().__init__(name=name, **kwargs)
        _non_negative("LeakyReLU", negative_slope=negative_slope)
        self.negative_slope = negative_slope


class ELU(_Elementwise):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""

    FUNCTION = activations.elu
    ARGUMENTS = ("alpha",)

    def __init__(self, alpha: float = 1.0, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.alpha = alpha


def _softmax(x: jax.Array, axis: int | list[int]) -> jax.Array:
    """Softmax over one axis, or jointly over several (as Keras's layer: ``exp(x - logsumexp(x))``)."""
    if isinstance(axis, (list, tuple)):
        if len(axis) > 1:
            return jnp.exp(x - jax.nn.logsumexp(x, axis=tuple(axis), keepdims=True))
        (axis,) = axis
    return activations.softmax(x, axis=axis)


class Softmax(_Elementwise):
    """Softmax over ``axis`` (an int, or a list normalized jointly); no ``mask`` argument."""

    FUNCTION = _softmax
    ARGUMENTS = ("axis",)

    def __init__(self, axis: int | list[int] = -1, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else int(axis)


class PReLU(Layer):
    """Leaky ReLU with learned slopes ``alpha``: ``relu(x) - alpha * relu(-x)``.

    ``alpha`` has the input's shape past the batch axis, with size 1 on
    ``shared_axes`` (counted with the batch axis as 0): ``shared_axes=[1, 2]``
    gives images one slope per channel.
    """

    supports_masking = True  # as Keras: the input's mask passes through unchanged

    def __init__(
        self,
        alpha_initializer: Any = "Zeros",
        alpha_regularizer: Any = None,
        shared_axes: int | list[int] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        if shared_axes is not None and not isinstance(shared_axes, (list, tuple)):
            shared_axes = [shared_axes]
        self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """``alpha``: the input shape past the batch axis, 1 on the shared axes, each other size known."""
        shared = set(self.shared_axes or [])
        bad = [a for a in shared if not 1 <= a < len(spec.shape)]
        if bad:
            raise self.input_error(
                f"has shared_axes {self.shared_axes}, but an input of shape {spec.shape} has axes 1 to "
                f"{len(spec.shape) - 1} past the batch axis"
            )
        shape = tuple(1 if axis in shared else size for axis, size in enumerate(spec.shape) if axis > 0)
        if None in shape:
            raise self.input_error(
                f"needs known sizes on the axes it does not share to size alpha, got input shape "
                f"{spec.shape}; share the unknown axes (shared_axes=[...])"
            )
        return [WeightSpec("alpha", shape, self.alpha_initializer, regularizer=self.alpha_regularizer)]

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape and dtype."""
        return TensorSpec(spec.shape, spec.dtype)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``relu(x) - alpha * relu(-x)``, as Keras computes it."""
        return jax.nn.relu(x) - params["alpha"] * jax.nn.relu(-x)

    def get_config(self) -> dict:
        """Keras's PReLU config (no constraint)."""
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
            "shared_axes": self.shared_axes,
        }
