"""Mathematically equal implementations ("lowerings") of a convolution, for the picker to choose from.

Every function here takes channels-last input ``(batch, *spatial, channels)``
and a kernel ``(*kernel_size, channels // groups, filters)`` (Keras's layout)
and computes the same convolution:

- :func:`conv_xla`: one ``lax.conv_general_dilated``, the reference;
- :func:`conv_im2col`: the kernel offsets' strided slices of the padded input
  stacked on the channel axis ("im2col"), then one matmul;
- :func:`conv_shifted`: one matmul per kernel offset, summed.

XLA:CPU runs the last two as plain matmuls, which loop well (a convolution's
weight gradient inside ``lax.scan`` does not) and often run faster outside a
loop too; a GPU's convolution usually beats both. Transposed convolutions use
the same three after :func:`transposed_as_conv` turns them into a stride-1
convolution of the zero-dilated input.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

Pads = Sequence[tuple[int, int]]


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """XLA's "SAME" padding of one dim: ``ceil(size / stride)`` outputs, extra on the right."""
    total = max((-(-size // stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def explicit_padding(
    padding: str, spatial: Sequence[int], kernel_size: Sequence[int], strides: Sequence[int],
    dilation: Sequence[int],
) -> list[tuple[int, int]]:
    """``(before, after)`` per spatial dim for "valid", "same" or "causal" (left-padded, 1D)."""
    windows = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation)]
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "causal":
        return [(windows[0] - 1, 0)]
    return [same_padding(n, w, s) for n, w, s in zip(spatial, windows, strides)]


def _channels_last_dims(rank: int) -> lax.ConvDimensionNumbers:
    io = (0, rank + 1, *range(1, rank + 1))
    return lax.ConvDimensionNumbers(lhs_spec=io, rhs_spec=(rank + 1, rank, *range(rank)), out_spec=io)


def conv_xla(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], pads: Pads, dilation: Sequence[int], groups: int
) -> jax.Array:
    """The convolution as XLA's own op (the reference every other lowering must equal)."""
    rank = x.ndim - 2
    return lax.conv_general_dilated(
        x, kernel, window_strides=strides, padding=list(pads), rhs_dilation=dilation,
        dimension_numbers=_channels_last_dims(rank), feature_group_count=groups,
    )


def _patches(
    x: jax.Array, kernel_size: Sequence[int], strides: Sequence[int], pads: Pads, dilation: Sequence[int]
) -> list[jax.Array]:
    """A strided slice of the padded input per kernel offset (row-major), each ``(batch, *out, channels)``."""
    x = jnp.pad(x, [(0, 0), *pads, (0, 0)])
    windows = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation)]
    out = [(n - w) // s + 1 for n, w, s in zip(x.shape[1:-1], windows, strides)]
    slices = []
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        start = [o * d for o, d in zip(offset, dilation)]
        limit = [b + (m - 1) * s + 1 for b, m, s in zip(start, out, strides)]
        slices.append(lax.slice(x, (0, *start, 0), (x.shape[0], *limit, x.shape[-1]), (1, *strides, 1)))
    return slices


def _grouped_matmul(patch: jax.Array, kernel: jax.Array, groups: int) -> jax.Array:
    """``patch (..., K, channels) @ kernel (K, channels // groups, filters)``, group by group."""
    taps, per_group, filters = kernel.shape
    patch = patch.reshape(*patch.shape[:-2], taps, groups, per_group)
    kernel = kernel.reshape(taps, per_group, groups, filters // groups)
    y = jnp.einsum("...kgc,kcgf->...gf", patch, kernel)
    return y.reshape(*y.shape[:-2], filters)


def conv_im2col(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], pads: Pads, dilation: Sequence[int], groups: int
) -> jax.Array:
    """The convolution as one matmul of the stacked patches ``(batch, *out, K * channels)`` by the kernel."""
    rank = x.ndim - 2
    kernel_size, filters = kernel.shape[:rank], kernel.shape[-1]
    patches = _patches(x, kernel_size, strides, pads, dilation)
    if groups == 1:
        return jnp.concatenate(patches, axis=-1) @ kernel.reshape(-1, filters)
    return _grouped_matmul(jnp.stack(patches, axis=-2), kernel.reshape(-1, *kernel.shape[-2:]), groups)


def conv_shifted(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], pads: Pads, dilation: Sequence[int], groups: int
) -> jax.Array:
    """The convolution as a sum of one matmul per kernel offset (no stacked copy of the patches)."""
    rank = x.ndim - 2
    kernel_size = kernel.shape[:rank]
    taps = kernel.reshape(-1, *kernel.shape[-2:])
    y = None
    for i, patch in enumerate(_patches(x, kernel_size, strides, pads, dilation)):
        if groups == 1:
            term = patch @ taps[i]
        else:
            term = _grouped_matmul(patch[..., None, :], taps[i : i + 1], groups)
        y = term if y is None else y + term
    return y


def transposed_as_conv(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], pads: Pads
) -> tuple[jax.Array, jax.Array]:
    """A transposed convolution's input and kernel as a stride-1 convolution's (as ``lax.conv_transpose``).

    The input gets ``stride - 1`` zeros between its elements and the ``pads``
    (negative ones crop); the kernel ``(*k, filters, channels)`` is flipped in
    space and its last two axes swapped.
    """
    rank = x.ndim - 2
    config = [(0, 0, 0), *((lo, hi, s - 1) for (lo, hi), s in zip(pads, strides)), (0, 0, 0)]
    dilated = lax.pad(x, jnp.zeros((), x.dtype), config)
    flipped = jnp.flip(kernel, axis=tuple(range(rank)))
    return dilated, jnp.swapaxes(flipped, -1, -2)


def patch_bytes(x_shape: Sequence[int], kernel_shape: Sequence[int], itemsize: int) -> int:
    """An upper bound on the bytes of im2col's stacked patches: the input's size times the kernel's taps."""
    taps = 1
    for k in kernel_shape[: len(x_shape) - 2]:
        taps *= k
    size = itemsize * taps
    for n in x_shape:
        size *= n
    return size


CONV_LOWERINGS = {"xla": conv_xla, "im2col": conv_im2col, "shifted": conv_shifted}
