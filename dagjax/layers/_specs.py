"""Tensor and weight specs: what a layer knows of its inputs and weights before any array exists.

Unknown (``None``) dims are found by tracing a layer twice with two far-apart
stand-in sizes (``PROBE_SIZES``): a dim that comes out the same both times
does not depend on the unknown one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PROBE_SIZES = (83, 131)  # stand-ins for unknown dims when tracing shapes


class TensorSpec:
    """Shape (``None`` for unknown dims) and dtype of a tensor: a pytree leaf."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: Sequence[int | None], dtype: Any) -> None:
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)

    def __repr__(self) -> str:
        return f"TensorSpec({self.shape}, {self.dtype.name})"

    def __eq__(self, other) -> bool:
        return isinstance(other, TensorSpec) and (self.shape, self.dtype) == (other.shape, other.dtype)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """One weight a layer owns. Trainable weights live in ``params``, others in ``state``."""

    name: str
    shape: tuple
    initializer: Callable
    dtype: Any = jnp.float32
    trainable: bool = True
    regularizer: Callable | None = None


def as_spec(x: Any) -> TensorSpec:
    """The shape and dtype of an array, a ``ShapeDtypeStruct`` or a symbolic tensor, as a ``TensorSpec``."""
    return TensorSpec(x.shape, x.dtype)


def probe(spec: TensorSpec, size: int) -> jax.ShapeDtypeStruct:
    """``spec`` with its unknown dims set to ``size``, to trace a layer on."""
    return jax.ShapeDtypeStruct(tuple(size if d is None else d for d in spec.shape), spec.dtype)


def merge_probes(a: Any, b: Any) -> Any:
    """Dims that differ between the two probe runs are unknown (``None``)."""
    return jax.tree_util.tree_map(
        lambda x, y: TensorSpec(tuple(dx if dx == dy else None for dx, dy in zip(x.shape, y.shape)), x.dtype),
        a,
        b,
    )
