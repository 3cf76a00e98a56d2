"""Elementwise arithmetic, math and comparisons: ``keras.ops`` names with ``jax.numpy`` semantics.

Each op is made by one factory (``_unary`` / ``_binary``, as stax's ``elementwise``); ints
become floats where Keras's JAX backend makes them so (``exp``, ``sqrt``, ``mean``...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._operation import operation


def _floats(x: Any) -> jax.Array:
    """``x`` as an array, ints and bools made float32, as Keras's ``exp``/``mean`` do."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(jnp.float32)


def _unary(name: str, keras_class: str, fn: Callable, doc: str, module: str = "numpy") -> Callable:
    """The op ``name(x) = fn(x)``, registered as Keras's ``keras_class``."""

    def op(x: Any) -> jax.Array:
        return fn(x)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return operation(keras_class, module)(op)


def _binary(name: str, keras_class: str, fn: Callable, doc: str) -> Callable:
    """The op ``name(x1, x2) = fn(x1, x2)`` (NumPy broadcasting), registered as Keras's ``keras_class``."""

    def op(x1: Any, x2: Any) -> jax.Array:
        return fn(jnp.asarray(x1), jnp.asarray(x2))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return operation(keras_class, tensors=("x1", "x2"))(op)


add = _binary("add", "Add", jnp.add, "``x1 + x2``.")
subtract = _binary("subtract", "Subtract", jnp.subtract, "``x1 - x2``.")
multiply = _binary("multiply", "Multiply", jnp.multiply, "``x1 * x2``.")
divide = _binary("divide", "Divide", jnp.divide, "``x1 / x2`` (ints give floats).")
true_divide = _binary("true_divide", "TrueDivide", jnp.divide, "``x1 / x2``: what ``/`` records, as Keras's.")
floor_divide = _binary("floor_divide", "FloorDivide", jnp.floor_divide, "``x1 // x2``.")
mod = _binary("mod", "Mod", jnp.mod, "``x1 % x2``.")
power = _binary("power", "Power", jnp.power, "``x1 ** x2``.")
maximum = _binary("maximum", "Maximum", jnp.maximum, "Elementwise maximum.")
minimum = _binary("minimum", "Minimum", jnp.minimum, "Elementwise minimum.")
matmul = _binary("matmul", "Matmul", jnp.matmul, "Matrix product ``x1 @ x2`` (batched over leading axes).")
dot = _binary("dot", "Dot", jnp.dot, "NumPy's ``dot``: last axis of ``x1`` by second-to-last of ``x2``.")
equal = _binary("equal", "Equal", jnp.equal, "``x1 == x2``, elementwise.")
not_equal = _binary("not_equal", "NotEqual", jnp.not_equal, "``x1 != x2``, elementwise.")
less = _binary("less", "Less", jnp.less, "``x1 < x2``.")
less_equal = _binary("less_equal", "LessEqual", jnp.less_equal, "``x1 <= x2``.")
greater = _binary("greater", "Greater", jnp.greater, "``x1 > x2``.")
greater_equal = _binary("greater_equal", "GreaterEqual", jnp.greater_equal, "``x1 >= x2``.")
logical_and = _binary("logical_and", "LogicalAnd", jnp.logical_and, "Elementwise ``and`` (as ``&`` records).")
logical_or = _binary("logical_or", "LogicalOr", jnp.logical_or, "Elementwise ``or`` (as ``|`` records).")
logical_xor = _binary("logical_xor", "LogicalXor", jnp.logical_xor, "Elementwise ``xor`` (as ``^`` records).")

negative = _unary("negative", "Negative", jnp.negative, "``-x``.")
absolute = _unary("absolute", "Absolute", jnp.absolute, "``|x|``, elementwise.")
abs = absolute  # noqa: A001 - keras.ops.abs is absolute too
square = _unary("square", "Square", jnp.square, "``x * x``.")
sqrt = _unary("sqrt", "Sqrt", lambda x: jnp.sqrt(_floats(x)), "Square root.")
exp = _unary("exp", "Exp", lambda x: jnp.exp(_floats(x)), "``e ** x``.")
log = _unary("log", "Log", lambda x: jnp.log(_floats(x)), "Natural logarithm.")
log1p = _unary("log1p", "Log1p", lambda x: jnp.log1p(_floats(x)), "``log(1 + x)``, exact for small ``x``.")
sign = _unary("sign", "Sign", jnp.sign, "-1, 0 or 1 by the sign of ``x``.")
floor = _unary("floor", "Floor", lambda x: jnp.floor(_floats(x)), "Round down.")
ceil = _unary("ceil", "Ceil", lambda x: jnp.ceil(_floats(x)), "Round up.")
sin = _unary("sin", "Sin", lambda x: jnp.sin(_floats(x)), "Sine.")
cos = _unary("cos", "Cos", lambda x: jnp.cos(_floats(x)), "Cosine.")
tanh = _unary("tanh", "Tanh", lambda x: jnp.tanh(_floats(x)), "Hyperbolic tangent.")
rsqrt = _unary("rsqrt", "Rsqrt", lambda x: jax.lax.rsqrt(_floats(x)), "``1 / sqrt(x)``.", module="math")
erf = _unary("erf", "Erf", lambda x: jax.scipy.special.erf(_floats(x)), "The error function.", module="math")
logical_not = _unary("logical_not", "LogicalNot", jnp.logical_not, "Elementwise ``not`` (as ``~`` records).")
isnan = _unary("isnan", "Isnan", jnp.isnan, "Whether each entry is NaN.")


@operation("Round")
def round(x: Any, decimals: int = 0) -> jax.Array:  # noqa: A001 - keras.ops.round
    """Round half to even, to ``decimals`` places."""
    return jnp.round(x, decimals)


@operation("Clip")
def clip(x: Any, x_min: Any, x_max: Any) -> jax.Array:
    """``x`` limited to ``[x_min, x_max]`` (bools count as int32, as in Keras)."""
    x = jnp.asarray(x)
    return jnp.clip(x.astype(jnp.int32) if x.dtype == jnp.bool_ else x, x_min, x_max)


@operation("Where", tensors=("condition", "x1", "x2"))
def where(condition: Any, x1: Any = None, x2: Any = None) -> jax.Array:
    """``x1`` where ``condition`` holds, else ``x2``."""
    return jnp.where(condition, x1, x2)


@operation("Einsum", tensors=("operands",))
def einsum(subscripts: str, *operands: Any) -> jax.Array:
    """Einstein summation, as ``jnp.einsum``."""
    return jnp.einsum(subscripts, *operands)


__all__ = [
    "abs", "absolute", "add", "ceil", "clip", "cos", "divide", "dot", "einsum", "equal", "erf", "exp",
    "floor", "floor_divide", "greater", "greater_equal", "isnan", "less", "less_equal", "log", "log1p",
    "logical_and", "logical_not", "logical_or", "logical_xor", "matmul", "maximum", "minimum", "mod",
    "multiply", "negative", "not_equal", "power", "round", "rsqrt", "sign", "sin", "sqrt", "square",
    "subtract", "tanh", "true_divide", "where",
]
