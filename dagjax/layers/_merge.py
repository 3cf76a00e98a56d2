"""Merge layers: combine a list of tensors (Add, Concatenate, Dot, ...).

Each class has a Keras-style function twin: ``add([a, b])`` is ``Add()([a, b])``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from dagjax._graph import SymbolicTensor
from dagjax.layers._base import Layer


class _Merge(Layer):
    """Elementwise merge of two or more tensors of broadcast-compatible shapes."""

    exact_inputs: int | None = None
    supports_masking = True

    def check_input(self, *specs: Any) -> None:
        """One list of at least two tensors (``exact_inputs`` if set), then ``check_shapes``."""
        if len(specs) != 1 or not isinstance(specs[0], (list, tuple)):
            raise self.input_error("expects a list of tensors, e.g. layer([a, b])")
        (specs,) = specs
        if len(specs) < 2 or (self.exact_inputs and len(specs) != self.exact_inputs):
            wanted = self.exact_inputs or "at least 2"
            raise self.input_error(f"expects {wanted} inputs, got {len(specs)}")
        self.check_shapes([s.shape for s in specs])

    def check_shapes(self, shapes: list[tuple]) -> None:
        """Same rank, and each known dim equal to the first input's or 1 (broadcast)."""
        ref = shapes[0]
        for shape in shapes[1:]:
            if len(shape) != len(ref) or any(
                a is not None and b is not None and a != b and 1 not in (a, b) for a, b in zip(ref, shape)
            ):
                raise self.input_error(f"cannot merge tensors of incompatible shapes {ref} and {shape}")

    def call(self, params: dict, inputs: Sequence[jax.Array]) -> jax.Array:
        """``combine`` folded left over the inputs, with numpy broadcasting."""
        return functools.reduce(self.combine, inputs)

    def compute_mask(self, inputs: Sequence[jax.Array], mask: Any = None) -> jax.Array | None:
        """Keras's: a step is real if it is in any input; no mask if some input has none."""
        if mask is None or any(m is None for m in mask):
            return None
        return functools.reduce(jnp.logical_or, mask)

    @staticmethod
    def combine(a: jax.Array, b: jax.Array) -> jax.Array:
        """The elementwise binary operation; subclasses set it (``jnp.add``, ...)."""
        raise NotImplementedError


class Add(_Merge):
    """Sum of the inputs, elementwise."""

    combine = staticmethod(jnp.add)


class Subtract(_Merge):
    """``inputs[0] - inputs[1]``, elementwise (exactly two inputs)."""

    exact_inputs = 2
    combine = staticmethod(jnp.subtract)


class Multiply(_Merge):
    """Product of the inputs, elementwise."""

    combine = staticmethod(jnp.multiply)


class Maximum(_Merge):
    """Elementwise maximum of the inputs."""

    combine = staticmethod(jnp.maximum)


class Minimum(_Merge):
    """Elementwise minimum of the inputs."""

    combine = staticmethod(jnp.minimum)


class Average(_Merge):
    """Mean of the inputs, elementwise."""

    def call(self, params: dict, inputs: Sequence[jax.Array]) -> jax.Array:
        """The sum of the inputs divided by their count."""
        return functools.reduce(jnp.add, inputs) / len(inputs)


class Concatenate(_Merge):
    """Join along ``axis``; every other dim must agree."""

    def __init__(self, axis: int = -1, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.axis = int(axis)

    def check_shapes(self, shapes: list[tuple]) -> None:
        """Same rank, ``axis`` in range, and every known dim off ``axis`` equal (no broadcasting)."""
        rank = len(shapes[0])
        axis = self.axis % rank if -rank <= self.axis < rank else None
        for shape in shapes[1:]:
            if (
                axis is None
                or len(shape) != rank
                or any(
                    i != axis and a is not None and b is not None and a != b
                    for i, (a, b) in enumerate(zip(shapes[0], shape))
                )
            ):
                raise self.input_error(
                    f"cannot concatenate shapes {shapes} on axis {self.axis}: all other dims must match"
                )

    def compute_mask(self, inputs: Sequence[jax.Array], mask: Any = None) -> jax.Array | None:
        """Keras's: the masks (all-True for an input without one) joined along ``axis``, any over the last."""
        if mask is None or all(m is None for m in mask):
            return None
        full = [
            jnp.ones(x.shape, bool) if m is None else jnp.broadcast_to(m[..., None], x.shape)
            if m.ndim < x.ndim else m
            for x, m in zip(inputs, mask)
        ]
        return jnp.any(jnp.concatenate(full, axis=self.axis), axis=-1)

    def call(self, params: dict, inputs: Sequence[jax.Array]) -> jax.Array:
        """The inputs cast to their common dtype and joined along ``axis``."""
        dtype = jnp.result_type(*inputs)
        return jnp.concatenate([x.astype(dtype) for x in inputs], axis=self.axis)

    def get_config(self) -> dict:
        """The base config plus ``axis``."""
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Batched dot product over ``axes`` (Keras ``batch_dot``), optionally cosine."""

    exact_inputs = 2

    def __init__(
        self, axes: int | Sequence[int], normalize: bool = False, name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.axes = tuple(axes) if isinstance(axes, (list, tuple)) else (int(axes), int(axes))
        self.normalize = normalize

    def _axes_for(self, shape_a, shape_b) -> tuple[int, int]:
        return tuple(ax % len(s) for ax, s in zip(self.axes, (shape_a, shape_b)))

    def check_shapes(self, shapes: list[tuple]) -> None:
        """The two ``axes`` dims must be equal (``None`` matches only ``None``, as Keras), not the batch."""
        a, b = shapes
        ax_a, ax_b = self._axes_for(a, b)
        if 0 in (ax_a, ax_b) or a[ax_a] != b[ax_b]:
            raise self.input_error(
                f"cannot take the dot product of shapes {a} and {b} over axes {self.axes}: "
                f"dims {a[ax_a]} and {b[ax_b]} must be equal and not the batch dim"
            )

    def compute_mask(self, inputs: Sequence[jax.Array], mask: Any = None) -> None:
        """No mask on the dot product (Keras's)."""
        return None

    def call(self, params: dict, inputs: Sequence[jax.Array]) -> jax.Array:
        """Batched ``dot_general`` over ``axes`` (normalized if ``normalize``); (batch,) -> (batch, 1)."""
        a, b = inputs
        ax_a, ax_b = self._axes_for(a.shape, b.shape)
        if self.normalize:
            a = a / jnp.maximum(jnp.linalg.norm(a, axis=ax_a, keepdims=True), 1e-12)
            b = b / jnp.maximum(jnp.linalg.norm(b, axis=ax_b, keepdims=True), 1e-12)
        out = jax.lax.dot_general(a, b, (((ax_a,), (ax_b,)), ((0,), (0,))))
        return out[:, None] if out.ndim == 1 else out

    def get_config(self) -> dict:
        """The base config plus ``axes`` (always a pair) and ``normalize``."""
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _functional(cls: type[_Merge]) -> Callable[..., Any]:
    def merge(inputs: Sequence[SymbolicTensor], **kwargs: Any) -> SymbolicTensor:
        return cls(**kwargs)(inputs)

    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = f"``{merge.__name__}(inputs, **kwargs)`` is ``{cls.__name__}(**kwargs)(inputs)``."
    return merge


add = _functional(Add)
subtract = _functional(Subtract)
multiply = _functional(Multiply)
average = _functional(Average)
maximum = _functional(Maximum)
minimum = _functional(Minimum)
concatenate = _functional(Concatenate)
dot = _functional(Dot)
