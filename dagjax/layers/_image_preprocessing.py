"""Image preprocessing inside a model: Resizing and CenterCrop, plus the affine resampler the
random augmentation layers share (``affine_transform``, Keras's ``ops.image.affine_transform``).

Images are batches ``(batch, height, width, channels)``, or channels first
with ``data_format="channels_first"``. Every size is static, so crops and
aspect-ratio arithmetic happen in Python at trace time, as in Keras.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec

RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic")
AFFINE_INTERPOLATIONS = {"nearest": 0, "bilinear": 1}  # map_coordinates' spline order
FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


def check_data_format(layer: str, data_format: str | None) -> str:
    """``data_format`` (default channels_last), one of Keras's two."""
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"{layer} data_format must be 'channels_last' or 'channels_first', got {data_format!r}."
        )
    return data_format


def check_choice(layer: str, argument: str, value: Any, choices: Any) -> Any:
    """``value`` if it is one of ``choices``, else a ValueError naming the layer and argument."""
    if value not in choices:
        raise ValueError(f"{layer} {argument} must be one of {tuple(choices)}, got {value!r}.")
    return value


def to_channels_last(images: jax.Array, data_format: str) -> jax.Array:
    """``images`` as ``(batch, height, width, channels)``."""
    return jnp.transpose(images, (0, 2, 3, 1)) if data_format == "channels_first" else images


def from_channels_last(images: jax.Array, data_format: str) -> jax.Array:
    """Back to ``data_format`` from ``(batch, height, width, channels)``."""
    return jnp.transpose(images, (0, 3, 1, 2)) if data_format == "channels_first" else images


def spatial_axes(data_format: str) -> tuple[int, int]:
    """The height and width axes of a batch of images."""
    return (2, 3) if data_format == "channels_first" else (1, 2)


def affine_transform(
    images: jax.Array, transforms: jax.Array, interpolation: str, fill_mode: str, fill_value: float
) -> jax.Array:
    """Resample channels-last ``images``: output ``(y, x)`` reads ``(b0 x + b1 y + b2, a0 x + a1 y + a2)``.

    ``transforms`` is ``(batch, 8)`` in Keras's layout ``[a0, a1, a2, b0, b1, b2, 0, 0]``.
    """
    _, height, width, channels = images.shape
    y, x, c = jnp.meshgrid(jnp.arange(height), jnp.arange(width), jnp.arange(channels), indexing="ij")
    y, x, c = (v.astype(transforms.dtype) for v in (y, x, c))

    def one(image, t):
        source_y = t[3] * x + t[4] * y + t[5]
        source_x = t[0] * x + t[1] * y + t[2]
        return jax.scipy.ndimage.map_coordinates(
            image,
            [source_y, source_x, c],
            order=AFFINE_INTERPOLATIONS[interpolation],
            mode=fill_mode,
            cval=fill_value,
        )

    return jax.vmap(one)(images, transforms)


def crop_to_aspect(images: jax.Array, height: int, width: int) -> jax.Array:
    """The centred largest crop of channels-last ``images`` with the target's aspect ratio (as Keras)."""
    in_h, in_w = images.shape[1:3]
    crop_h = max(min(in_h, int(float(in_w * height) / width)), 1)
    crop_w = max(min(in_w, int(float(in_h * width) / height)), 1)
    top, left = int(float(in_h - crop_h) / 2), int(float(in_w - crop_w) / 2)
    return images[:, top : top + crop_h, left : left + crop_w, :]


def pad_to_aspect(images: jax.Array, height: int, width: int, fill_value: float) -> jax.Array:
    """Channels-last ``images`` padded symmetrically with ``fill_value`` to the target's aspect ratio."""
    in_h, in_w = images.shape[1:3]
    pad_h = max(in_h, int(float(in_w * height) / width))
    pad_w = max(in_w, int(float(in_h * width) / height))
    top, left = int(float(pad_h - in_h) / 2), int(float(pad_w - in_w) / 2)
    return jnp.pad(images, ((0, 0), (top, top), (left, left), (0, 0)), constant_values=fill_value)


def _resized_shape(spec: TensorSpec, height: int, width: int, data_format: str) -> tuple:
    shape = list(spec.shape)
    h_axis, w_axis = spatial_axes(data_format)
    shape[h_axis], shape[w_axis] = height, width
    return tuple(shape)


class Resizing(Layer):
    """Resizes images to ``(height, width)`` with ``jax.image.resize`` (Keras's interpolation names).

    ``crop_to_aspect_ratio`` / ``pad_to_aspect_ratio`` first crop (or pad) to the
    target's aspect ratio, so the image is not distorted, as Keras.
    """

    input_ndim = 4

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        fill_mode: str = "constant",
        fill_value: float = 0.0,
        antialias: bool = False,
        data_format: str | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.height, self.width = int(height), int(width)
        self.interpolation = check_choice("Resizing", "interpolation", interpolation, RESIZE_INTERPOLATIONS)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Resizing takes only one of crop_to_aspect_ratio and pad_to_aspect_ratio.")
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = (
            bool(crop_to_aspect_ratio),
            bool(pad_to_aspect_ratio),
        )
        self.fill_mode = check_choice("Resizing", "fill_mode", fill_mode, ("constant",))
        self.fill_value, self.antialias = float(fill_value), bool(antialias)
        self.data_format = check_data_format("Resizing", data_format)

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """``(batch, height, width, channels)`` in the input's dtype (integers are rounded, as Keras)."""
        return TensorSpec(_resized_shape(spec, self.height, self.width, self.data_format), spec.dtype)

    def call(self, params: dict, images: jax.Array) -> jax.Array:
        """The resized batch, in the input's dtype (rounded and clipped for integer images)."""
        integer = jnp.issubdtype(images.dtype, jnp.integer)
        x = to_channels_last(images.astype(jnp.float32) if integer else images, self.data_format)
        if self.crop_to_aspect_ratio:
            x = crop_to_aspect(x, self.height, self.width)
        elif self.pad_to_aspect_ratio:
            x = pad_to_aspect(x, self.height, self.width, self.fill_value)
        shape = (x.shape[0], self.height, self.width, x.shape[3])
        out = jax.image.resize(x, shape, method=self.interpolation, antialias=self.antialias)
        out = from_channels_last(out, self.data_format)
        if integer:
            info = jnp.iinfo(images.dtype)
            out = jnp.clip(jnp.round(out), info.min, info.max)
        return out.astype(images.dtype)

    def get_config(self) -> dict:
        """Keras's config."""
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": self.fill_mode,
            "fill_value": self.fill_value,
            "antialias": self.antialias,
            "data_format": self.data_format,
        }


class CenterCrop(Layer):
    """The central ``(height, width)`` window of each image; a smaller image is cropped to the aspect
    ratio and resized up instead (Keras's ``smart_resize``). Output in float32."""

    input_ndim = 4

    def __init__(
        self, height: int, width: int, data_format: str | None = None, name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.height, self.width = int(height), int(width)
        self.data_format = check_data_format("CenterCrop", data_format)

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """``(batch, height, width, channels)`` in float32."""
        return TensorSpec(_resized_shape(spec, self.height, self.width, self.data_format), "float32")

    def call(self, params: dict, images: jax.Array) -> jax.Array:
        """The centred crop, or the aspect-ratio crop resized bilinearly when the image is too small."""
        x = to_channels_last(jnp.asarray(images, jnp.float32), self.data_format)
        in_h, in_w = x.shape[1:3]
        if in_h >= self.height and in_w >= self.width:
            top, left = (in_h - self.height) // 2, (in_w - self.width) // 2
            out = x[:, top : top + self.height, left : left + self.width, :]
        else:
            x = crop_to_aspect(x, self.height, self.width)
            out = jax.image.resize(x, (x.shape[0], self.height, self.width, x.shape[3]), method="bilinear")
        return from_channels_last(out, self.data_format)

    def get_config(self) -> dict:
        """Keras's config: ``height``, ``width``, ``data_format``."""
        return {
            **super().get_config(),
            "height": self.height,
            "width": self.width,
            "data_format": self.data_format,
        }
