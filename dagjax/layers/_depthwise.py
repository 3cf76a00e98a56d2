"""Depthwise and separable convolutions, with the depthwise lowering chosen per backend.

A depthwise convolution filters each input channel on its own with
``depth_multiplier`` kernels; output channel ``c * depth_multiplier + m`` is
input channel ``c`` through kernel ``m``, as Keras. It has two lowerings:
``"xla"``, a grouped ``lax.conv_general_dilated`` (``feature_group_count``,
the reference), and ``"shifted"``, one multiply-add per kernel offset over
strided slices of the padded input. XLA:CPU runs the grouped convolution very
slowly, so ``"shifted"`` is the CPU's default; the picker (``_lowering``) may
measure and choose otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dagjax import initializers, regularizers
from dagjax.layers import _lowering
from dagjax.layers._conv import BaseConv, conv_dimension_numbers
from dagjax.layers._conv_lowerings import same_padding
from dagjax.layers._specs import TensorSpec, WeightSpec


def depthwise_conv_shifted(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding: str,
    dilation_rate: Sequence[int],
    data_format: str,
) -> jax.Array:
    """Depthwise convolution as ``sum over offsets of slice(x) * kernel[offset]`` (fast on XLA:CPU)."""
    rank = x.ndim - 2
    if data_format == "channels_first":
        x = jnp.moveaxis(x, 1, -1)
    window = [(k - 1) * d + 1 for k, d in zip(kernel.shape[:rank], dilation_rate)]
    if padding == "same":
        pads = [same_padding(n, w, s) for n, w, s in zip(x.shape[1:-1], window, strides)]
        x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    out = [(n - w) // s + 1 for n, w, s in zip(x.shape[1:-1], window, strides)]
    single = kernel.shape[-1] == 1  # multiplier 1: no trailing axis of 1, which XLA:CPU vectorizes badly
    y = None
    for offset in itertools.product(*(range(k) for k in kernel.shape[:rank])):
        start = [o * d for o, d in zip(offset, dilation_rate)]
        limit = [b + (m - 1) * s + 1 for b, m, s in zip(start, out, strides)]
        patch = lax.slice(x, (0, *start, 0), (x.shape[0], *limit, x.shape[-1]), (1, *strides, 1))
        # (..., channels) by the offset's (channels,), or (..., channels, depth_multiplier)
        term = patch * kernel[offset][:, 0] if single else patch[..., None] * kernel[offset]
        y = term if y is None else y + term
    if not single:
        y = y.reshape(*y.shape[:-2], -1)
    return jnp.moveaxis(y, -1, 1) if data_format == "channels_first" else y


def depthwise_conv_grouped(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding: str,
    dilation_rate: Sequence[int],
    data_format: str,
) -> jax.Array:
    """Depthwise convolution as a grouped ``lax.conv_general_dilated`` (one group per channel)."""
    rank = x.ndim - 2
    channels = kernel.shape[-2]
    return lax.conv_general_dilated(
        x,
        kernel.reshape(*kernel.shape[:-2], 1, -1),
        window_strides=strides,
        padding=padding.upper(),
        rhs_dilation=dilation_rate,
        dimension_numbers=conv_dimension_numbers(rank, data_format),
        feature_group_count=channels,
    )


def depthwise_conv(layer: BaseConv, x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``layer``'s depthwise convolution of ``x`` by ``kernel`` ``(*k, channels, multiplier)``, lowered
    as the picker chooses (by default: shifted multiply-adds on the CPU, the grouped convolution elsewhere).
    """
    geometry = (layer.strides, layer.padding, layer.dilation_rate, layer.data_format)
    candidates = {
        "xla": lambda x, k: depthwise_conv_grouped(x, k, *geometry),
        "shifted": lambda x, k: depthwise_conv_shifted(x, k, *geometry),
    }
    default = "shifted" if jax.default_backend() == "cpu" else "xla"
    op = "depthwise s{} p{} d{} {}".format(*geometry)
    return _lowering.lower(layer, op, candidates, (x.astype(kernel.dtype), kernel), default)


class DepthwiseConv(BaseConv):
    """``activation(depthwise(x, kernel) + bias)``: ``channels * depth_multiplier`` outputs."""

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
            bias_initializer, bias_regularizer, activity_regularizer, name, **kwargs,
        )
        if int(depth_multiplier) <= 0:
            raise ValueError(
                f"{type(self).__name__} needs a positive depth_multiplier, got {depth_multiplier!r}."
            )
        self.depth_multiplier = int(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """``kernel`` ``(*kernel_size, channels, depth_multiplier)`` (Keras 3's name), a bias per output."""
        channels = self.known_channels(spec)
        # Keras 3 names this weight "kernel" (SeparableConv's is "depthwise_kernel").
        kernel_shape = (*self.kernel_size, channels, self.depth_multiplier)
        return [
            WeightSpec("kernel", kernel_shape, self.depthwise_initializer,
                       regularizer=self.depthwise_regularizer),
            *self.bias_weights(channels * self.depth_multiplier),
        ]

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The depthwise convolution (lowered for the backend), then bias and activation."""
        y = depthwise_conv(self, x, params["kernel"])
        return self.finish(params, y)

    def get_config(self) -> dict:
        """The shared convolution config plus depth_multiplier, depthwise initializer and regularizer."""
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
        }


class DepthwiseConv1D(DepthwiseConv):
    """Depthwise convolution over ``(batch, steps, channels)``."""

    rank = 1


class DepthwiseConv2D(DepthwiseConv):
    """Depthwise convolution over ``(batch, height, width, channels)``."""

    rank = 2


class SeparableConv(BaseConv):
    """A depthwise convolution, then a pointwise (1x1) one to ``filters`` channels."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
            bias_initializer, bias_regularizer, activity_regularizer, name, **kwargs,
        )
        if int(filters) <= 0 or int(depth_multiplier) <= 0:
            raise ValueError(
                f"{type(self).__name__} needs positive `filters` and `depth_multiplier`, "
                f"got filters={filters!r}, depth_multiplier={depth_multiplier!r}."
            )
        self.filters, self.depth_multiplier = int(filters), int(depth_multiplier)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """Keras's ``depthwise_kernel``, 1x1 ``pointwise_kernel`` (channels * multiplier, filters), bias."""
        channels = self.known_channels(spec)
        depthwise_shape = (*self.kernel_size, channels, self.depth_multiplier)
        pointwise_shape = (*(1,) * self.rank, channels * self.depth_multiplier, self.filters)
        return [
            WeightSpec("depthwise_kernel", depthwise_shape, self.depthwise_initializer,
                       regularizer=self.depthwise_regularizer),
            WeightSpec("pointwise_kernel", pointwise_shape, self.pointwise_initializer,
                       regularizer=self.pointwise_regularizer),
            *self.bias_weights(self.filters),
        ]

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """Depthwise convolution, the 1x1 pointwise one as a ``tensordot`` on channels, bias, activation."""
        y = depthwise_conv(self, x, params["depthwise_kernel"])
        pointwise = params["pointwise_kernel"].reshape(-1, self.filters)
        y = jnp.tensordot(jnp.moveaxis(y, self.channel_axis, -1), pointwise, 1)
        y = jnp.moveaxis(y, -1, self.channel_axis)
        return self.finish(params, y)

    def get_config(self) -> dict:
        """The shared convolution config plus filters, depth_multiplier and both kernels' settings."""
        return {
            **super().get_config(),
            "filters": self.filters,
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
            "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer),
        }


class SeparableConv1D(SeparableConv):
    """Separable convolution over ``(batch, steps, channels)``."""

    rank = 1


class SeparableConv2D(SeparableConv):
    """Separable convolution over ``(batch, height, width, channels)``."""

    rank = 2
