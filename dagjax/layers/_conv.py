"""Convolutions over 1-3 spatial dims: ``Conv1D/2D/3D`` and ``Conv1D/2D/3DTranspose``.

Kernels keep Keras's layouts, so Keras weights load one-to-one:
``(*kernel_size, in_channels // groups, filters)`` for a convolution and
``(*kernel_size, filters, in_channels)`` for a transposed one. The reference
lowering is ``lax.conv_general_dilated`` (through ``lax.conv_transpose`` for the
latter), with dimension numbers for either ``data_format``: no transposes. Each
call also offers im2col and shifted-matmul lowerings (``_conv_lowerings``), and
the picker (``_lowering``) chooses one for the backend and shapes.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from dagjax import activations, initializers, regularizers
from dagjax.layers import _lowering
from dagjax.layers._conv_lowerings import (
    CONV_LOWERINGS,
    explicit_padding,
    patch_bytes,
    transposed_as_conv,
)
from dagjax.layers._spatial import SpatialLayer, as_tuple, standardize_padding
from dagjax.layers._specs import TensorSpec, WeightSpec


def conv_dimension_numbers(rank: int, data_format: str) -> lax.ConvDimensionNumbers:
    """Inputs and outputs laid out as ``data_format``; kernels as ``(*spatial, in, out)``."""
    if data_format == "channels_last":
        io = (0, rank + 1, *range(1, rank + 1))
    else:
        io = (0, 1, *range(2, rank + 2))
    return lax.ConvDimensionNumbers(lhs_spec=io, rhs_spec=(rank + 1, rank, *range(rank)), out_spec=io)


def transpose_padding(
    kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> tuple[int, int]:
    """``(before, after)`` padding for ``lax.conv_transpose`` giving Keras's output length.

    "valid": ``(n - 1) * stride + max(k, stride)`` (``k`` dilated), or
    ``(n - 1) * stride + k + output_padding``; "same": ``n * stride``, or
    ``(n - 1) * stride + k % 2 + output_padding``.
    """
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return k - 1, k - 1 + extra
    total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
    before = min(total // 2 + total % 2, k - 1)
    return before, total - before


IM2COL_MAX_BYTES = 1 << 28  # im2col copies the input once per kernel tap: not past 256 MiB


class BaseConv(SpatialLayer):
    """What every convolution shares: window geometry, bias and activation.

    Subclasses declare their kernels and compute the raw convolution, then call
    :meth:`finish` to add the bias and apply the activation.
    """

    allows_causal = False  # Conv1D only, as Keras
    slides_window = True  # False for transposed convolutions: their input needs no minimum size

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        bias_initializer: Any = "zeros",
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            data_format=data_format, name=name, activity_regularizer=activity_regularizer, **kwargs
        )
        self.kernel_size = as_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = as_tuple(strides, self.rank, "strides")
        self.dilation_rate = as_tuple(dilation_rate, self.rank, "dilation_rate")
        self.padding = standardize_padding(padding, allow_causal=self.allows_causal)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._lowering: str | None = None

    @property
    def lowering(self) -> str | None:
        """This layer's lowering, forced (``"xla"``, ``"im2col"``, ``"shifted"``), or None: the picker's.

        Not part of the config: it says how to compute, not what.
        """
        return self._lowering

    @lowering.setter
    def lowering(self, name: str | None) -> None:
        _lowering.check_name(name, f"{type(self).__name__} '{self.name}'.lowering", _lowering.CONV_NAMES)
        self._lowering = name

    def reject_strided_dilation(self) -> None:
        """Keras's Conv and ConvTranspose refuse strides > 1 together with dilation > 1."""
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"{type(self).__name__} does not support strides > 1 together with dilation_rate > 1, "
                f"got strides={self.strides} and dilation_rate={self.dilation_rate}."
            )

    @property
    def dilated_kernel_size(self) -> tuple[int, ...]:
        """The span of the kernel with its dilation: ``(k - 1) * d + 1`` per spatial dim."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate))

    def check_sizes(self, spec: TensorSpec) -> None:
        """With padding "valid", each known spatial dim must hold the dilated kernel (not for transposed)."""
        if self.slides_window and self.padding == "valid":
            self.check_window_fits(spec, self.dilated_kernel_size, "dilated kernel")

    def channels_last_lowerings(self, x: jax.Array, kernel: jax.Array, run, grow: int = 1) -> dict:
        """The matmul lowerings ``{"im2col": ..., "shifted": ...}`` as functions of ``(x, kernel)`` in
        ``data_format``: ``run(lowering, x, kernel)`` calls one on channels-last arrays. im2col is left
        out where its stacked patches (of an input ``grow`` times ``x``) would pass ``IM2COL_MAX_BYTES``;
        both where a size is symbolic.
        """
        first = self.data_format == "channels_first"
        if not all(isinstance(d, int) for d in (*x.shape, *kernel.shape)):
            return {}  # symbolic sizes (an export for every batch size): the reference only

        def in_layout(fn):
            def lowered(x: jax.Array, kernel: jax.Array) -> jax.Array:
                y = run(fn, jnp.moveaxis(x, 1, -1) if first else x, kernel)
                return jnp.moveaxis(y, -1, 1) if first else y

            return lowered

        names = ["shifted"]
        if grow * patch_bytes(x.shape, kernel.shape, x.dtype.itemsize) <= IM2COL_MAX_BYTES:
            names.insert(0, "im2col")
        return {name: in_layout(CONV_LOWERINGS[name]) for name in names}

    def bias_weights(self, size: int) -> list[WeightSpec]:
        """A ``bias`` of ``(size,)`` when ``use_bias``, else none."""
        if not self.use_bias:
            return []
        return [WeightSpec("bias", (size,), self.bias_initializer, regularizer=self.bias_regularizer)]

    def finish(self, params: dict, y: jax.Array) -> jax.Array:
        """Add the bias along the channel axis, then apply the activation."""
        if self.use_bias:
            shape = [1] * y.ndim
            shape[self.channel_axis] = -1
            y = y + params["bias"].reshape(shape)
        return self.activation(y)

    def get_config(self) -> dict:
        """The window geometry, activation and bias settings every convolution shares, as Keras's."""
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }


class Conv(BaseConv):
    """``activation(conv(x, kernel) + bias)``; subclasses fix the spatial ``rank``."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
            bias_initializer, bias_regularizer, activity_regularizer, name, **kwargs,
        )
        if int(filters) <= 0 or int(groups) <= 0 or int(filters) % int(groups):
            raise ValueError(
                f"{type(self).__name__} needs positive `filters` divisible by a positive `groups`, "
                f"got filters={filters!r}, groups={groups!r}."
            )
        self.reject_strided_dilation()
        self.filters, self.groups = int(filters), int(groups)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """Keras's kernel ``(*kernel_size, channels // groups, filters)`` and bias; groups divide channels."""
        channels = self.known_channels(spec)
        if channels % self.groups:
            raise self.input_error(
                f"has groups={self.groups}, which must divide the input channels, got {channels} "
                f"channels (shape {spec.shape})"
            )
        kernel_shape = (*self.kernel_size, channels // self.groups, self.filters)
        return [
            WeightSpec("kernel", kernel_shape, self.kernel_initializer, regularizer=self.kernel_regularizer),
            *self.bias_weights(self.filters),
        ]

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The convolution in ``data_format`` (causal: padded on the left), as the picker lowers it."""
        kernel = params["kernel"]
        x = x.astype(kernel.dtype)  # as Keras: integer images work
        spatial = x.shape[2:] if self.data_format == "channels_first" else x.shape[1:-1]
        if self.padding == "same" and not all(isinstance(n, int) for n in spatial):
            pads = "SAME"  # symbolic sizes (an export): XLA works the padding out
        else:
            pads = explicit_padding(self.padding, spatial, self.kernel_size, self.strides, self.dilation_rate)
        dims = conv_dimension_numbers(self.rank, self.data_format)

        def xla(x: jax.Array, kernel: jax.Array) -> jax.Array:
            return lax.conv_general_dilated(
                x, kernel, self.strides, pads, rhs_dilation=self.dilation_rate, dimension_numbers=dims,
                feature_group_count=self.groups,
            )

        candidates = {"xla": xla, **self.channels_last_lowerings(
            x, kernel, lambda fn, x, k: fn(x, k, self.strides, pads, self.dilation_rate, self.groups)
        )}
        op = f"conv s{self.strides} p{pads} d{self.dilation_rate} g{self.groups} {self.data_format}"
        return self.finish(params, _lowering.lower(self, op, candidates, (x, kernel)))

    def get_config(self) -> dict:
        """The shared convolution config plus filters, groups, kernel initializer and regularizer."""
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
        }


class Conv1D(Conv):
    """Convolution over ``(batch, steps, channels)``; ``padding`` may also be "causal"."""

    rank = 1
    allows_causal = True


class Conv2D(Conv):
    """Convolution over ``(batch, height, width, channels)``."""

    rank = 2


class Conv3D(Conv):
    """Convolution over ``(batch, depth, height, width, channels)``."""

    rank = 3


class ConvTranspose(BaseConv):
    """Transposed convolution (the gradient of a convolution), e.g. to upsample."""

    slides_window = False

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        output_padding: Any = None,
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias,
            bias_initializer, bias_regularizer, activity_regularizer, name, **kwargs,
        )
        if int(filters) <= 0:
            raise ValueError(f"{type(self).__name__} needs positive `filters`, got {filters!r}.")
        self.reject_strided_dilation()
        self.filters = int(filters)
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = as_tuple(output_padding, self.rank, "output_padding", allow_zero=True)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(
                    f"{type(self).__name__} needs output_padding < strides in every dim, "
                    f"got output_padding={self.output_padding} and strides={self.strides}."
                )
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """Keras's transposed kernel ``(*kernel_size, filters, channels)`` (out before in) and bias."""
        kernel_shape = (*self.kernel_size, self.filters, self.known_channels(spec))
        return [
            WeightSpec("kernel", kernel_shape, self.kernel_initializer, regularizer=self.kernel_regularizer),
            *self.bias_weights(self.filters),
        ]

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The transposed convolution padded per dim to Keras's output length (as the picker lowers it)."""
        output_padding = self.output_padding or (None,) * self.rank
        padding = [
            transpose_padding(k, s, d, self.padding, p)
            for k, s, d, p in zip(self.kernel_size, self.strides, self.dilation_rate, output_padding)
        ]
        dims = conv_dimension_numbers(self.rank, self.data_format)
        ones = (1,) * self.rank

        def xla(x: jax.Array, kernel: jax.Array) -> jax.Array:
            return lax.conv_transpose(
                x, kernel, self.strides, padding, rhs_dilation=self.dilation_rate, dimension_numbers=dims,
                transpose_kernel=True,
            )

        def run(fn, x: jax.Array, kernel: jax.Array) -> jax.Array:
            dilated, flipped = transposed_as_conv(x, kernel, self.strides, padding)
            return fn(dilated, flipped, ones, [(0, 0)] * self.rank, self.dilation_rate, 1)

        kernel = params["kernel"]
        x = x.astype(kernel.dtype)
        candidates = {
            "xla": xla, **self.channels_last_lowerings(x, kernel, run, grow=math.prod(self.strides))
        }
        op = f"conv_transpose s{self.strides} p{padding} d{self.dilation_rate} {self.data_format}"
        y = _lowering.lower(self, op, candidates, (x, kernel))
        return self.finish(params, y)

    def get_config(self) -> dict:
        """The shared convolution config plus filters, output_padding, kernel initializer and regularizer."""
        return {
            **super().get_config(),
            "filters": self.filters,
            "output_padding": self.output_padding,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
        }


class Conv1DTranspose(ConvTranspose):
    """Transposed convolution over ``(batch, steps, channels)``."""

    rank = 1


class Conv2DTranspose(ConvTranspose):
    """Transposed convolution over ``(batch, height, width, channels)``."""

    rank = 2


class Conv3DTranspose(ConvTranspose):
    """Transposed convolution over ``(batch, depth, height, width, channels)``."""

    rank = 3
