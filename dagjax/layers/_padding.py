"""Layers that resize spatial dims without weights: UpSampling, ZeroPadding, Cropping.

One class per idea serves every rank; the 1D/2D/3D subclasses only fix
``rank`` and Keras's default arguments. Amounts given as an int apply to both
sides of every spatial dim; ``((before, after), ...)`` sets each side.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._spatial import SpatialLayer, as_pairs, as_tuple
from dagjax.layers._specs import TensorSpec

_RESIZE_METHODS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")


def _as_config(pairs: tuple[tuple[int, int], ...]) -> tuple:
    """Per-dim pairs as Keras writes them in configs: one bare pair for 1D layers."""
    return pairs[0] if len(pairs) == 1 else pairs


class UpSampling(SpatialLayer):
    """Scale each spatial dim by an integer ``size``: repeats ("nearest") or interpolation."""

    def __init__(self, size: Any = 2, data_format: str | None = None, interpolation: str = "nearest",
                 name: str | None = None, **kwargs: Any) -> None:
        super().__init__(data_format=data_format, name=name, **kwargs)
        self.size = as_tuple(size, self.rank, "size")
        self.interpolation = str(interpolation).lower()
        if self.interpolation not in _RESIZE_METHODS:
            raise ValueError(f"`interpolation` must be one of {_RESIZE_METHODS}, got {interpolation!r}.")

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """Each spatial dim repeated ``size`` times ("nearest"), else ``jax.image.resize``, no antialias."""
        if self.interpolation == "nearest":
            for axis, factor in zip(self.spatial_axes, self.size):
                x = jnp.repeat(x, factor, axis=axis)
            return x
        shape = list(x.shape)
        for axis, factor in zip(self.spatial_axes, self.size):
            shape[axis] *= factor
        return jax.image.resize(x, tuple(shape), method=self.interpolation, antialias=False)

    def get_config(self) -> dict:
        """The spatial config plus ``size`` and ``interpolation``."""
        return {**super().get_config(), "size": self.size, "interpolation": self.interpolation}


class UpSampling1D(UpSampling):
    """Repeat each step ``size`` times: ``(batch, steps, ch)`` -> ``(batch, steps * size, ch)``."""

    rank = 1

    def __init__(self, size: int = 2, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(size, name=name, **kwargs)


class UpSampling2D(UpSampling):
    """Scale height and width by ``size``; ``interpolation`` "nearest" or "bilinear" (or cubic, lanczos)."""

    rank = 2


class ZeroPadding(SpatialLayer):
    """Add zeros before and after each spatial dim."""

    def __init__(
        self, padding: Any = 1, data_format: str | None = None, name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(data_format=data_format, name=name, **kwargs)
        self.padding = as_pairs(padding, self.rank, "padding")

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``jnp.pad`` with zeros on the spatial axes only."""
        widths = [(0, 0)] * x.ndim
        for axis, pair in zip(self.spatial_axes, self.padding):
            widths[axis] = pair
        return jnp.pad(x, widths)

    def get_config(self) -> dict:
        """The spatial config plus ``padding`` as per-dim pairs (one bare pair for 1D, as Keras)."""
        return {**super().get_config(), "padding": _as_config(self.padding)}


class ZeroPadding1D(ZeroPadding):
    """Zeros added at the start and end of the steps axis."""

    rank = 1


class ZeroPadding2D(ZeroPadding):
    """Zeros added around the rows and columns."""

    rank = 2


class ZeroPadding3D(ZeroPadding):
    """Zeros added around the three spatial dims."""

    rank = 3


class Cropping(SpatialLayer):
    """Remove ``(before, after)`` elements from each spatial dim."""

    def __init__(
        self, cropping: Any, data_format: str | None = None, name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(data_format=data_format, name=name, **kwargs)
        self.cropping = as_pairs(cropping, self.rank, "cropping")

    def check_sizes(self, spec: TensorSpec) -> None:
        """Each known spatial dim must keep at least one element after cropping."""
        for axis, pair in zip(self.spatial_axes, self.cropping):
            if spec.shape[axis] is not None and sum(pair) >= spec.shape[axis]:
                raise self.input_error(
                    f"crops {self.cropping}, which leaves nothing of input shape {spec.shape} "
                    f"(layout {self.layout()})"
                )

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``x`` sliced ``before:-after`` on each spatial axis."""
        index = [slice(None)] * x.ndim
        for axis, (before, after) in zip(self.spatial_axes, self.cropping):
            index[axis] = slice(before, x.shape[axis] - after)
        return x[tuple(index)]

    def get_config(self) -> dict:
        """The spatial config plus ``cropping`` as per-dim pairs (one bare pair for 1D, as Keras)."""
        return {**super().get_config(), "cropping": _as_config(self.cropping)}


class Cropping1D(Cropping):
    """Steps cut off the start and end of the steps axis."""

    rank = 1

    def __init__(self, cropping: Any = (1, 1), name: str | None = None, **kwargs: Any) -> None:
        super().__init__(cropping, name=name, **kwargs)


class Cropping2D(Cropping):
    """Rows and columns cut off the edges."""

    rank = 2

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        super().__init__(cropping, data_format, name, **kwargs)


class Cropping3D(Cropping):
    """Entries cut off the edges of the three spatial dims."""

    rank = 3

    def __init__(self, cropping: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        super().__init__(cropping, data_format, name, **kwargs)
