"""Pooling over 1-3 spatial dims: windowed (Max/AveragePooling) and global.

One windowed base and one global base serve every rank and reduction, as
stax's pooling factory. Windows are ``lax.reduce_window`` calls whose window
and strides are 1 on the batch and channel axes, so either ``data_format``
runs without transposes. With ``padding="same"``, AveragePooling averages
only the input elements inside each window (the padding is not counted), as
Keras.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dagjax.layers._spatial import SpatialLayer, as_tuple, standardize_padding
from dagjax.layers._specs import TensorSpec


def _window_counts(sizes: Sequence[int], pool_size: Sequence[int], strides: Sequence[int]) -> np.ndarray:
    """How many input elements each "same"-padded window covers, per spatial dim, multiplied out."""
    counts = np.ones((), np.float32)
    for n, k, s in zip(sizes, pool_size, strides):
        out = -(-n // s)
        before = max((out - 1) * s + k - n, 0) // 2
        starts = np.arange(out) * s - before
        per_dim = np.minimum(starts + k, n) - np.maximum(starts, 0)
        counts = np.multiply.outer(counts, per_dim.astype(np.float32))
    return counts


def _lowest(dtype: Any) -> np.ndarray:
    """Max pooling's start value: -inf for floats, the dtype's minimum for ints (False for bools)."""
    if jnp.issubdtype(dtype, jnp.integer):
        return np.array(jnp.iinfo(dtype).min, dtype)
    if jnp.issubdtype(dtype, jnp.bool_):
        return np.array(False)
    return np.array(-np.inf, dtype)


class Pooling(SpatialLayer):
    """Reduce each ``pool_size`` window (moved by ``strides``, default ``pool_size``) to one value."""

    reduction: str  # "max" or "average"

    def __init__(
        self,
        pool_size: Any,
        strides: Any = None,
        padding: str = "valid",
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data_format=data_format, name=name, **kwargs)
        self.pool_size = as_tuple(pool_size, self.rank, "pool_size")
        self.strides = as_tuple(pool_size if strides is None else strides, self.rank, "strides")
        self.padding = standardize_padding(padding)

    def check_sizes(self, spec: TensorSpec) -> None:
        """With padding "valid", each known spatial dim must hold at least one pool window."""
        if self.padding == "valid":
            self.check_window_fits(spec, self.pool_size, "pool")

    def _full(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial window sizes or strides as one entry per input axis (1 on batch and channels)."""
        return (1, *spatial, 1) if self.channels_last else (1, 1, *spatial)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """One ``lax.reduce_window``: max, or sum divided by how many input elements each window covers."""
        window, strides, padding = self._full(self.pool_size), self._full(self.strides), self.padding.upper()
        # Concrete numpy init values let jax see a max/add monoid, which it knows how to differentiate.
        if self.reduction == "max":
            return lax.reduce_window(x, _lowest(x.dtype), lax.max, window, strides, padding)
        sums = lax.reduce_window(x, np.array(0, x.dtype), lax.add, window, strides, padding)
        if self.padding == "valid":
            return sums / math.prod(self.pool_size)
        counts = _window_counts([x.shape[a] for a in self.spatial_axes], self.pool_size, self.strides)
        counts = counts[..., None] if self.channels_last else counts[None]
        return sums / jnp.asarray(counts, x.dtype)

    def get_config(self) -> dict:
        """Config with the pool size, strides and padding, as Keras's."""
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


class MaxPooling(Pooling):
    """The largest value of each window."""

    reduction = "max"

    def __init__(self, pool_size: Any = 2, strides: Any = None, padding: str = "valid",
                 data_format: str | None = None, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(pool_size, strides, padding, data_format, name, **kwargs)


class AveragePooling(Pooling):
    """The mean of each window."""

    reduction = "average"


class MaxPooling1D(MaxPooling):
    """Max over 1-D windows of ``pool_size``, moved by ``strides``."""

    rank = 1


class MaxPooling2D(MaxPooling):
    """Max over 2-D windows of ``pool_size``, moved by ``strides``."""

    rank = 2


class MaxPooling3D(MaxPooling):
    """Max over 3-D windows of ``pool_size``, moved by ``strides``."""

    rank = 3


class AveragePooling1D(AveragePooling):
    """Mean over 1-D windows of ``pool_size``, moved by ``strides``."""

    rank = 1


class AveragePooling2D(AveragePooling):
    """Mean over 2-D windows of ``pool_size``, moved by ``strides``."""

    rank = 2


class AveragePooling3D(AveragePooling):
    """Mean over 3-D windows of ``pool_size``, moved by ``strides``."""

    rank = 3


class GlobalPooling(SpatialLayer):
    """Reduce over every spatial dim: ``(batch, channels)``, or length-1 dims with ``keepdims``."""

    reduction: str  # "max" or "average"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, name: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(data_format=data_format, name=name, **kwargs)
        self.keepdims = bool(keepdims)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``jnp.max`` or ``jnp.mean`` over the spatial axes, keeping them as size 1 if ``keepdims``."""
        reduce = jnp.max if self.reduction == "max" else jnp.mean
        return reduce(x, axis=self.spatial_axes, keepdims=self.keepdims)

    def get_config(self) -> dict:
        """The spatial config plus ``keepdims``."""
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalMaxPooling(GlobalPooling):
    """The largest value over all spatial positions, per channel."""

    reduction = "max"


class GlobalAveragePooling(GlobalPooling):
    """The mean over all spatial positions, per channel."""

    reduction = "average"


class GlobalMaxPooling1D(GlobalMaxPooling):
    """Max over all steps."""

    rank = 1


class GlobalMaxPooling2D(GlobalMaxPooling):
    """Max over all rows and columns."""

    rank = 2


class GlobalMaxPooling3D(GlobalMaxPooling):
    """Max over all three spatial dims."""

    rank = 3


class GlobalAveragePooling1D(GlobalAveragePooling):
    """Mean over all steps; with a Keras mask, over the real steps only (Keras's)."""

    rank = 1
    supports_masking = True
    uses_input_mask = True

    def compute_mask(self, inputs: jax.Array, mask: Any = None) -> None:
        """The steps are pooled away: no mask."""
        return None

    def apply(self, params: dict, state: dict, x: jax.Array, training: bool = False,
              rng: jax.Array | None = None, input_mask: Any = None) -> tuple[jax.Array, dict]:
        """The mean over steps, the masked ones left out of the sum and the count."""
        mask = None if input_mask is None else input_mask[0]
        if mask is None:
            return super().call(params, x), state  # the pooling itself, even under an overriding call
        (axis,) = self.spatial_axes
        keep = jnp.expand_dims(mask.astype(bool), 2 if axis == 1 else 1)  # beside the steps: the channels
        total = jnp.sum(jnp.where(keep, x, 0), axis=axis, keepdims=self.keepdims)
        return total / jnp.sum(keep.astype(x.dtype), axis=axis, keepdims=self.keepdims), state


class GlobalAveragePooling2D(GlobalAveragePooling):
    """Mean over all rows and columns."""

    rank = 2


class GlobalAveragePooling3D(GlobalAveragePooling):
    """Mean over all three spatial dims."""

    rank = 3
