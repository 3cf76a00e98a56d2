"""Per-sample normalizations that keep no statistics: GroupNormalization and UnitNormalization.

Each sample is normalized on its own, in training and inference alike, so
these layers have no ``state`` and no use for the padding mask.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dagjax import initializers, regularizers
from dagjax.layers._base import Layer
from dagjax.layers._normalization import affine_weights, check_axes, compute_dtype, normalize
from dagjax.layers._specs import TensorSpec, WeightSpec


class GroupNormalization(Layer):
    """Splits the channels on ``axis`` into ``groups`` and normalizes each sample's groups on their own.

    The moments of a group are taken over its channels and every other
    non-batch axis; then per-channel ``gamma`` and ``beta`` scale and shift.
    ``groups=-1`` makes one group per channel (instance normalization).
    """

    autocast = False  # as Keras: normalizes in float32 whatever it is given, returns the compute dtype
    supports_masking = True  # as Keras: the input's mask passes through unchanged

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(groups, bool) or not isinstance(groups, int) or (groups <= 0 and groups != -1):
            raise ValueError(
                "GroupNormalization groups must be a positive integer (or -1 for instance normalization), "
                f"got {groups!r}."
            )
        super().__init__(name=name, **kwargs)
        self.groups, self.axis, self.epsilon = groups, int(axis), float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def _groups(self, channels: int) -> int:
        return channels if self.groups == -1 else self.groups

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """``gamma`` and ``beta`` of the channel count, which ``groups`` must divide."""
        (axis,) = check_axes(self, spec, [self.axis])
        channels = spec.shape[axis]
        if channels % self._groups(channels):
            raise self.input_error(
                f"cannot split the {channels} channels of axis {self.axis} (input shape {spec.shape}) into "
                f"{self.groups} groups: groups must divide the number of channels"
            )
        return affine_weights(self, (channels,), self.scale, self.center)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """Each sample's groups normalized (float32 at least), scaled and shifted, in the layer dtype."""
        x = x.astype(compute_dtype(x.dtype))
        axis = self.axis % x.ndim
        channels = x.shape[axis]
        groups = self._groups(channels)
        grouped_shape = (*x.shape[:axis], groups, channels // groups, *x.shape[axis + 1:])
        grouped = x.reshape(grouped_shape)
        reduce = tuple(a for a in range(1, grouped.ndim) if a != axis)
        mean = jnp.mean(grouped, axis=reduce, keepdims=True)
        variance = jnp.var(grouped, axis=reduce, keepdims=True)
        per_channel = [1] * grouped.ndim
        per_channel[axis:axis + 2] = [groups, channels // groups]
        gamma, beta = (params[k].reshape(per_channel) if k in params else None for k in ("gamma", "beta"))
        out = normalize(grouped, mean, variance, self.epsilon, gamma, beta)
        return out.reshape(x.shape).astype(self.compute_dtype)

    def get_config(self) -> dict:
        """Keras's GroupNormalization config (no constraints)."""
        return {
            **super().get_config(),
            "groups": self.groups,
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
        }


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over ``axis`` (an int or a list): ``x / max(||x||, 1e-12)``."""

    supports_masking = True  # as Keras: the input's mask passes through unchanged

    def __init__(self, axis: int | list[int] = -1, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, int):
            self.axis = axis
        else:
            raise TypeError(f"UnitNormalization axis must be an int or a list of ints, got {axis!r}.")

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape and dtype, once every axis is checked to be a non-batch axis of the input."""
        ndim = len(spec.shape)
        for a in self.axis if isinstance(self.axis, list) else [self.axis]:
            if not -ndim <= a < ndim or a % ndim == 0:
                raise self.input_error(f"has axis {a}, not a non-batch axis of input shape {spec.shape}")
        return TensorSpec(spec.shape, spec.dtype)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``x * min(rsqrt(sum(x**2)), 1e12)``, as Keras's ``ops.normalize`` computes it."""
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        inverse_norm = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
        return x * jnp.minimum(inverse_norm, 1e12)

    def get_config(self) -> dict:
        """The base config plus ``axis``."""
        return {**super().get_config(), "axis": self.axis}
