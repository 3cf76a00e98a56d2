"""Random image augmentation: RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast.

As Dropout: random in training only, drawn from the ``rng`` that ``apply`` is
given (``fit`` derives one per step from ``compile``'s seed), and the identity
in inference, as Keras. Each image of a batch draws its own transformation,
with Keras's ranges and its affine matrices (rotation about the centre, zoom
about the centre, translation by a fraction of the size), resampled with
Keras's fill modes and interpolations (``affine_transform``). ``seed`` is
recorded in the config, as Keras's; the draws come from ``rng``. Output is
float32 (Keras's compute dtype).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._base import Layer
from dagjax.layers._core import require_rng
from dagjax.layers._image_preprocessing import (
    AFFINE_INTERPOLATIONS,
    FILL_MODES,
    affine_transform,
    check_choice,
    check_data_format,
    from_channels_last,
    to_channels_last,
)
from dagjax.layers._specs import TensorSpec

_FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def factor_range(layer: str, argument: str, factor: Any, bounds: tuple[float, float]) -> tuple[float, float]:
    """Keras's ``(lower, upper)``: a number ``f`` gives ``(max(-|f|, low), |f|)``; a pair, sorted."""
    low, high = bounds
    if isinstance(factor, (tuple, list)) and len(factor) == 2:
        lower, upper = sorted(float(f) for f in factor)
    elif isinstance(factor, (int, float)) and not isinstance(factor, bool):
        lower, upper = max(-abs(float(factor)), low), abs(float(factor))
    else:
        raise ValueError(f"{layer} {argument} must be a number or a pair of numbers, got {factor!r}.")
    if lower < low or upper > high:
        raise ValueError(f"{layer} {argument} must lie in [{low}, {high}], got {factor!r}.")
    return lower, upper


class _RandomImageLayer(Layer):
    """Base: ``augment(images, rng)`` on channels-last float32 images in training; identity otherwise."""

    uses_rng = True
    input_ndim = 4

    def __init__(
        self, seed: int | None = None, data_format: str | None = None, name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.seed = seed
        self.data_format = check_data_format(type(self).__name__, data_format)

    def augment(self, images: jax.Array, rng: jax.Array) -> jax.Array:
        """Channels-last ``images`` with a transformation drawn per image from ``rng``."""
        raise NotImplementedError

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape, in float32, without tracing the random draw."""
        return TensorSpec(spec.shape, "float32")

    def apply(
        self, params: dict, state: dict, x: jax.Array, training: bool = False, rng: jax.Array | None = None
    ) -> tuple[jax.Array, dict]:
        """The augmented batch in training (``rng`` required); the input (as float32) otherwise."""
        x = jnp.asarray(x, jnp.float32)
        if not training:
            return x, state
        images = to_channels_last(x, self.data_format)
        return from_channels_last(self.augment(images, require_rng(self, rng)), self.data_format), state

    def get_config(self) -> dict:
        """The base config with ``seed`` and ``data_format``."""
        return {**super().get_config(), "seed": self.seed, "data_format": self.data_format}


class _AffineRandomLayer(_RandomImageLayer):
    """Base of the geometric layers: a ``(batch, 8)`` matrix per draw, then resampling."""

    def __init__(
        self,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, data_format=data_format, name=name, **kwargs)
        layer = type(self).__name__
        self.fill_mode = check_choice(layer, "fill_mode", fill_mode, FILL_MODES)
        self.interpolation = check_choice(layer, "interpolation", interpolation, AFFINE_INTERPOLATIONS)
        self.fill_value = float(fill_value)

    def matrices(self, rng: jax.Array, batch: int, height: int, width: int) -> jax.Array:
        """``(batch, 8)`` transforms in Keras's layout, drawn from ``rng``."""
        raise NotImplementedError

    def augment(self, images: jax.Array, rng: jax.Array) -> jax.Array:
        """The images resampled through one drawn matrix each."""
        batch, height, width, _ = images.shape
        transforms = self.matrices(rng, batch, height, width)
        return affine_transform(images, transforms, self.interpolation, self.fill_mode, self.fill_value)

    def get_config(self) -> dict:
        """The base config with ``fill_mode``, ``interpolation`` and ``fill_value``."""
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


def _rows(*columns: jax.Array) -> jax.Array:
    """``(batch, 8)`` from eight ``(batch,)`` columns."""
    return jnp.stack(columns, axis=1)


class RandomFlip(_RandomImageLayer):
    """Flips each image with probability 1/2: left-right, up-down, or (Keras's default) both at once."""

    def __init__(
        self,
        mode: str = "horizontal_and_vertical",
        seed: int | None = None,
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, data_format=data_format, name=name, **kwargs)
        self.mode = check_choice("RandomFlip", "mode", mode, _FLIP_MODES)

    def augment(self, images: jax.Array, rng: jax.Array) -> jax.Array:
        """One draw per image decides its flips (the same draw for both axes, as Keras)."""
        flips = jax.random.uniform(rng, (images.shape[0], 1, 1, 1)) <= 0.5
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            images = jnp.where(flips, jnp.flip(images, axis=2), images)
        if self.mode in ("vertical", "horizontal_and_vertical"):
            images = jnp.where(flips, jnp.flip(images, axis=1), images)
        return images

    def get_config(self) -> dict:
        """Keras's config: ``mode``, ``seed``, ``data_format``."""
        return {**super().get_config(), "mode": self.mode}


class RandomRotation(_AffineRandomLayer):
    """Rotates each image about its centre by a fraction of a full turn drawn from ``factor``'s range."""

    def __init__(
        self,
        factor: Any,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, name=name, **kwargs)
        self.factor = factor_range("RandomRotation", "factor", factor, (-1.0, 1.0))

    def matrices(self, rng: jax.Array, batch: int, height: int, width: int) -> jax.Array:
        """Keras's rotation about ``((width - 1) / 2, (height - 1) / 2)``."""
        lower, upper = self.factor
        degrees = jax.random.uniform(rng, (batch,), minval=lower * 360.0, maxval=upper * 360.0)
        angle = degrees * (math.pi / 180.0)
        cos, sin = jnp.cos(angle), jnp.sin(angle)
        cx, cy = 0.5 * (width - 1), 0.5 * (height - 1)
        zeros = jnp.zeros_like(cos)
        return _rows(cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos, zeros, zeros)

    def get_config(self) -> dict:
        """Keras's config: ``factor`` and the resampling arguments."""
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_AffineRandomLayer):
    """Zooms each image about its centre: a factor ``f`` in the range shows it ``1 + f`` times smaller
    (positive: zoom out, negative: zoom in); without ``width_factor`` both axes zoom alike."""

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any = None,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, name=name, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_range = factor_range("RandomZoom", "height_factor", height_factor, (-1.0, 1.0))
        self.width_range = (
            None
            if width_factor is None
            else factor_range("RandomZoom", "width_factor", width_factor, (-1.0, 1.0))
        )

    def matrices(self, rng: jax.Array, batch: int, height: int, width: int) -> jax.Array:
        """Keras's zoom matrix ``[zx, 0, (w-1)/2 (1-zx), 0, zy, (h-1)/2 (1-zy), 0, 0]``."""
        h_key, w_key = jax.random.split(rng)
        zoom_y = 1.0 + jax.random.uniform(
            h_key, (batch,), minval=self.height_range[0], maxval=self.height_range[1]
        )
        zoom_x = zoom_y
        if self.width_range is not None:
            zoom_x = 1.0 + jax.random.uniform(
                w_key, (batch,), minval=self.width_range[0], maxval=self.width_range[1]
            )
        zeros = jnp.zeros_like(zoom_y)
        return _rows(
            zoom_x,
            zeros,
            (width - 1) / 2 * (1 - zoom_x),
            zeros,
            zoom_y,
            (height - 1) / 2 * (1 - zoom_y),
            zeros,
            zeros,
        )

    def get_config(self) -> dict:
        """Keras's config: both factors and the resampling arguments."""
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
        }


class RandomTranslation(_AffineRandomLayer):
    """Shifts each image by a fraction of its height and width drawn from the factors' ranges."""

    def __init__(
        self,
        height_factor: Any,
        width_factor: Any,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, name=name, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self.height_range = factor_range("RandomTranslation", "height_factor", height_factor, (-1.0, 1.0))
        self.width_range = factor_range("RandomTranslation", "width_factor", width_factor, (-1.0, 1.0))

    def matrices(self, rng: jax.Array, batch: int, height: int, width: int) -> jax.Array:
        """Keras's translation matrix ``[1, 0, -dx, 0, 1, -dy, 0, 0]``."""
        h_key, w_key = jax.random.split(rng)
        dy = height * jax.random.uniform(
            h_key, (batch,), minval=self.height_range[0], maxval=self.height_range[1]
        )
        dx = width * jax.random.uniform(
            w_key, (batch,), minval=self.width_range[0], maxval=self.width_range[1]
        )
        ones, zeros = jnp.ones_like(dx), jnp.zeros_like(dx)
        return _rows(ones, zeros, -dx, zeros, ones, -dy, zeros, zeros)

    def get_config(self) -> dict:
        """Keras's config: both factors and the resampling arguments."""
        return {
            **super().get_config(),
            "height_factor": self.height_factor,
            "width_factor": self.width_factor,
        }


class RandomContrast(_RandomImageLayer):
    """Scales each image's deviation from its per-channel mean by a factor drawn from
    ``[1 - lower, 1 + upper]`` (Keras's range: a number ``f`` gives ``[1, 1 + f]``), clipped to
    ``value_range``."""

    def __init__(
        self,
        factor: Any,
        value_range: tuple = (0, 255),
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, name=name, **kwargs)
        self.factor = factor_range("RandomContrast", "factor", factor, (0.0, 1.0))
        if len(value_range) != 2:
            raise ValueError(f"RandomContrast value_range must be a pair (low, high), got {value_range!r}.")
        self.value_range = tuple(float(v) for v in value_range)

    def augment(self, images: jax.Array, rng: jax.Array) -> jax.Array:
        """``(x - mean) * factor + mean`` per image, clipped."""
        lower, upper = self.factor
        factor = jax.random.uniform(rng, (images.shape[0], 1, 1, 1), minval=1.0 - lower, maxval=1.0 + upper)
        mean = jnp.mean(images, axis=(1, 2), keepdims=True)
        return jnp.clip((images - mean) * factor + mean, *self.value_range)

    def get_config(self) -> dict:
        """Keras's config: ``factor``, ``value_range``, ``seed``."""
        config = {**super().get_config(), "factor": list(self.factor), "value_range": list(self.value_range)}
        del config["data_format"]
        return config
