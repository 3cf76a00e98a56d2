"""Arrays made from data or numbers (``array``, ``ones``, ``arange``...), ``shape``, ``unstack``
and ``convert_to_tensor``.

The makers take no tensor, so they only compute (float32 unless told, as Keras's ``floatx``);
``shape`` reads the static shape, ``None`` for unknown dims of a symbolic tensor.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._operation import operation


def array(x: Any, dtype: Any = None) -> jax.Array:
    """``x`` (numbers, nested lists, an array) as an array, as Keras's ``ops.array``."""
    return jnp.array(x, dtype=dtype)


def ones(shape: Any, dtype: Any = None) -> jax.Array:
    """An array of ones (float32 unless ``dtype`` says otherwise)."""
    return jnp.ones(shape, dtype=dtype or jnp.float32)


def zeros(shape: Any, dtype: Any = None) -> jax.Array:
    """An array of zeros (float32 unless ``dtype`` says otherwise)."""
    return jnp.zeros(shape, dtype=dtype or jnp.float32)


def full(shape: Any, fill_value: Any, dtype: Any = None) -> jax.Array:
    """An array of ``fill_value`` (float32 unless ``dtype`` says otherwise, as Keras)."""
    return jnp.full(shape, fill_value, dtype=dtype or jnp.float32)


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> jax.Array:
    """Evenly spaced values in ``[start, stop)`` (int32 for ints, float32 for floats)."""
    return jnp.arange(start, stop, step, dtype=dtype)


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> jax.Array:  # noqa: N803 - keras.ops's
    """Ones on the ``k``-th diagonal of an ``N`` x ``M`` matrix (float32 unless told)."""
    return jnp.eye(N, M, k, dtype=dtype or jnp.float32)


def shape(x: Any) -> tuple:
    """The static shape of ``x``, ``None`` for a symbolic tensor's unknown dims (Keras's ``ops.shape``)."""
    return tuple(x.shape) if hasattr(x, "shape") else tuple(jnp.shape(x))


@operation("ConvertToTensor", "core")
def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None, ragged: Any = None) -> jax.Array:
    """``x`` as an array (of ``dtype`` if given)."""
    if sparse or ragged:
        raise NotImplementedError("dagjax.ops.convert_to_tensor: dagjax has dense tensors only.")
    return jnp.asarray(x, dtype=dtype)


@operation("Unstack", "core")
def unstack(x: Any, num: int | None = None, axis: int = 0) -> list:
    """The slices of ``x`` along ``axis``, as a list."""
    x = jnp.asarray(x)
    return [jnp.take(x, i, axis=axis) for i in range(x.shape[axis])]


__all__ = ["arange", "array", "convert_to_tensor", "eye", "full", "ones", "shape", "unstack", "zeros"]
