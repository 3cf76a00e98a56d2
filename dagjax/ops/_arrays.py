"""Reductions, shapes, joins and indexing: ``keras.ops`` names with ``jax.numpy`` semantics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._operation import operation
from dagjax.ops._numpy import _floats


def _reduction(name: str, keras_class: str, fn: Callable, doc: str, module: str = "numpy") -> Callable:
    """The op ``name(x, axis=None, keepdims=False)`` computing ``fn``, registered as ``keras_class``."""

    def op(x: Any, axis: Any = None, keepdims: bool = False) -> jax.Array:
        return fn(jnp.asarray(x), axis=axis, keepdims=keepdims)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return operation(keras_class, module)(op)


mean = _reduction("mean", "Mean", lambda x, **kw: jnp.mean(_floats(x), **kw), "Arithmetic mean.")
sum = _reduction("sum", "Sum", jnp.sum, "Sum.")  # noqa: A001 - keras.ops.sum
var = _reduction("var", "Var", lambda x, **kw: jnp.var(_floats(x), **kw), "Variance (population).")
std = _reduction("std", "Std", lambda x, **kw: jnp.std(_floats(x), **kw), "Standard deviation (population).")
argmax = _reduction("argmax", "Argmax", jnp.argmax, "Index of the largest entry (the first, on ties).")
argmin = _reduction("argmin", "Argmin", jnp.argmin, "Index of the smallest entry (the first, on ties).")
any = _reduction("any", "Any", jnp.any, "Whether any entry is true.")  # noqa: A001 - keras.ops.any
all = _reduction("all", "All", jnp.all, "Whether every entry is true.")  # noqa: A001 - keras.ops.all
logsumexp = _reduction(
    "logsumexp", "Logsumexp", lambda x, **kw: jax.nn.logsumexp(_floats(x), **kw),
    "``log(sum(exp(x)))``, stably.", module="math",
)


@operation("Max")
def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> jax.Array:  # noqa: A001
    """Largest entry."""
    return jnp.max(x, axis=axis, keepdims=keepdims, initial=initial)


@operation("Min")
def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> jax.Array:  # noqa: A001
    """Smallest entry."""
    return jnp.min(x, axis=axis, keepdims=keepdims, initial=initial)


@operation("Prod")
def prod(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> jax.Array:
    """Product of entries."""
    return jnp.prod(x, axis=axis, keepdims=keepdims, dtype=dtype)


@operation("Cumsum")
def cumsum(x: Any, axis: Any = None, dtype: Any = None) -> jax.Array:
    """Running sum (over the flattened array when ``axis`` is None)."""
    return jnp.cumsum(x, axis=axis, dtype=dtype)


@operation("Sort")
def sort(x: Any, axis: int = -1) -> jax.Array:
    """Entries sorted along ``axis``."""
    return jnp.sort(x, axis=axis)


@operation("Reshape")
def reshape(x: Any, newshape: Any) -> jax.Array:
    """``x`` in ``newshape`` (batch dim included; ``-1`` for the one dim inferred)."""
    return jnp.reshape(x, newshape)


@operation("Transpose")
def transpose(x: Any, axes: Any = None) -> jax.Array:
    """Axes permuted (reversed when ``axes`` is None)."""
    return jnp.transpose(x, axes)


@operation("ExpandDims")
def expand_dims(x: Any, axis: Any) -> jax.Array:
    """A new axis of size 1 at ``axis``."""
    return jnp.expand_dims(x, axis)


@operation("Squeeze")
def squeeze(x: Any, axis: Any = None) -> jax.Array:
    """Axes of size 1 removed (all of them when ``axis`` is None)."""
    return jnp.squeeze(x, axis)


@operation("Swapaxes")
def swapaxes(x: Any, axis1: int, axis2: int) -> jax.Array:
    """Two axes exchanged."""
    return jnp.swapaxes(x, axis1, axis2)


@operation("Moveaxis")
def moveaxis(x: Any, source: Any, destination: Any) -> jax.Array:
    """Axes moved to new positions."""
    return jnp.moveaxis(x, source, destination)


@operation("Flip")
def flip(x: Any, axis: Any = None) -> jax.Array:
    """Order of entries reversed along ``axis``."""
    return jnp.flip(x, axis)


@operation("BroadcastTo")
def broadcast_to(x: Any, shape: Any) -> jax.Array:
    """``x`` broadcast to ``shape``."""
    return jnp.broadcast_to(x, shape)


@operation("Tile")
def tile(x: Any, repeats: Any) -> jax.Array:
    """``x`` repeated ``repeats`` times along each axis."""
    return jnp.tile(x, repeats)


@operation("Repeat")
def repeat(x: Any, repeats: Any, axis: Any = None) -> jax.Array:
    """Each entry repeated ``repeats`` times along ``axis``."""
    return jnp.repeat(x, repeats, axis=axis)


@operation("Split")
def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list:
    """A list of pieces of ``x`` along ``axis``: that many equal sections, or cut at those indices."""
    return jnp.split(x, indices_or_sections, axis=axis)


@operation("Concatenate", tensors=("xs",))
def concatenate(xs: Any, axis: int = 0) -> jax.Array:
    """The tensors of ``xs`` joined along ``axis`` (0 by default, as ``keras.ops``)."""
    return jnp.concatenate([jnp.asarray(x) for x in xs], axis=axis)


@operation("Stack")
def stack(x: Any, axis: int = 0) -> jax.Array:
    """The tensors of ``x`` stacked along a new ``axis``."""
    return jnp.stack([jnp.asarray(t) for t in x], axis=axis)


@operation("Take", tensors=("x", "indices"))
def take(x: Any, indices: Any, axis: Any = None) -> jax.Array:
    """Entries at ``indices`` along ``axis`` (of the flattened ``x`` when None)."""
    return jnp.take(x, jnp.asarray(indices), axis=axis)


@operation("TakeAlongAxis", tensors=("x", "indices"))
def take_along_axis(x: Any, indices: Any, axis: Any = None) -> jax.Array:
    """Entries at ``indices`` (shaped as ``x``) along ``axis``."""
    return jnp.take_along_axis(x, jnp.asarray(indices), axis=axis)


@operation("GetItem", tensors=("x", "key"))
def get_item(x: Any, key: Any) -> jax.Array:
    """``x[key]``: what ``x[key]`` records (a key read back from a file as a list is a tuple)."""
    return jnp.asarray(x)[tuple(key) if isinstance(key, list) else key]


@operation("ZerosLike")
def zeros_like(x: Any, dtype: Any = None) -> jax.Array:
    """Zeros of ``x``'s shape (and dtype, unless given)."""
    return jnp.zeros_like(x, dtype=dtype)


@operation("OnesLike")
def ones_like(x: Any, dtype: Any = None) -> jax.Array:
    """Ones of ``x``'s shape (and dtype, unless given)."""
    return jnp.ones_like(x, dtype=dtype)


@operation("FullLike", tensors=("x", "fill_value"))
def full_like(x: Any, fill_value: Any, dtype: Any = None) -> jax.Array:
    """``fill_value`` in ``x``'s shape (and dtype, unless given)."""
    return jnp.full_like(x, fill_value, dtype=dtype)


__all__ = [
    "all", "any", "argmax", "argmin", "broadcast_to", "concatenate", "cumsum", "expand_dims", "flip",
    "full_like", "get_item", "logsumexp", "max", "mean", "min", "moveaxis", "ones_like", "prod",
    "repeat", "reshape", "sort", "split", "squeeze", "stack", "std", "sum", "swapaxes", "take",
    "take_along_axis", "tile", "transpose", "var", "zeros_like",
]
