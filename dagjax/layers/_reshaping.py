"""Layers that only rearrange values: Flatten, Reshape, Permute, RepeatVector."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec


class Flatten(Layer):
    """``(batch, d1, d2, ...)`` -> ``(batch, d1 * d2 * ...)``."""

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """All non-batch dims merged into one, in row-major order."""
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    """Reshape the non-batch dims to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape: tuple, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"Reshape target_shape may hold at most one -1, got {self.target_shape}.")

    def check_input(self, spec: TensorSpec) -> None:
        """When the input's per-sample size is known, it must fit ``target_shape`` (a -1 takes the rest)."""
        dims = spec.shape[1:]
        if None in dims:
            return
        size, known = math.prod(dims), math.prod(d for d in self.target_shape if d != -1)
        fits = size % known == 0 if -1 in self.target_shape else size == known
        if not fits:
            raise self.input_error(
                f"cannot reshape input of shape {spec.shape} ({size} values per sample) "
                f"to target_shape {self.target_shape}"
            )

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``x`` reshaped to ``(batch, *target_shape)``."""
        return x.reshape(x.shape[0], *self.target_shape)

    def get_config(self) -> dict:
        """The base config plus ``target_shape``."""
        return {**super().get_config(), "target_shape": self.target_shape}


class Permute(Layer):
    """Permute the non-batch dims; ``dims`` counts from 1 as in Keras."""

    def __init__(self, dims: tuple, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute dims must be a permutation of 1..{len(self.dims)}, got {self.dims}.")

    def check_input(self, spec: TensorSpec) -> None:
        """The input's rank must be ``len(dims) + 1``: ``dims`` names every non-batch axis."""
        if len(spec.shape) != len(self.dims) + 1:
            raise self.input_error(
                f"with dims {self.dims} expects input of rank {len(self.dims) + 1}, got shape {spec.shape}"
            )

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``x`` transposed with the batch axis kept first."""
        return jnp.transpose(x, (0, *self.dims))

    def get_config(self) -> dict:
        """The base config plus ``dims`` (counted from 1, as Keras's)."""
        return {**super().get_config(), "dims": self.dims}


class RepeatVector(Layer):
    """``(batch, features)`` -> ``(batch, n, features)``."""

    input_ndim = 2

    def __init__(self, n: int, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.n = int(n)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``x`` repeated ``n`` times along a new axis 1."""
        return jnp.repeat(x[:, None, :], self.n, axis=1)

    def get_config(self) -> dict:
        """The base config plus ``n``."""
        return {**super().get_config(), "n": self.n}
