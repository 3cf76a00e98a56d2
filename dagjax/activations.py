"""Activation functions: Keras's names, and Keras's keyword arguments where it has them.

Each is a function of arrays (``activations.relu(x, max_value=6.0)``), and
``get`` finds it by name for a layer's ``activation=``.

>>> from dagjax import activations
>>> activations.get("relu")(jnp.array([-1.0, 2.0]))
Array([0., 2.], dtype=float32)
>>> activations.relu(jnp.array([-1.0, 2.0]), negative_slope=0.5)
Array([-0.5,  2. ], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from dagjax._naming import function_name


def linear(x: jax.Array) -> jax.Array:
    """The identity: Keras's ``"linear"``, the activation ``None`` stands for."""
    return x


def relu(
    x: jax.Array, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0
) -> jax.Array:
    """Keras's ReLU: ``x`` above ``threshold``, capped at ``max_value``; ``negative_slope * (x - threshold)``
    below it. The defaults give ``max(x, 0)``.
    """
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return jax.nn.relu(x)
    threshold_ = jnp.asarray(threshold, x.dtype)
    out = jnp.where(x > threshold_, x, jnp.zeros((), x.dtype)) if threshold != 0.0 else jax.nn.relu(x)
    if max_value is not None:
        out = jnp.clip(out, 0, jnp.asarray(max_value, x.dtype))
    if negative_slope != 0.0:
        out = out - jnp.asarray(negative_slope, x.dtype) * jax.nn.relu(threshold_ - x)
    return out


def leaky_relu(x: jax.Array, negative_slope: float = 0.2) -> jax.Array:
    """Leaky ReLU with Keras's default slope 0.2 (``jax.nn.leaky_relu`` defaults to 0.01)."""
    return jax.nn.leaky_relu(x, negative_slope)


def elu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    return jax.nn.elu(x, alpha)


def celu(x: jax.Array, alpha: float = 1.0) -> jax.Array:
    """``max(x, 0) + alpha * min(exp(x / alpha) - 1, 0)``."""
    return jax.nn.celu(x, alpha)


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """``relu6(x + 3) / 6``, Keras 3's piecewise-linear sigmoid (slope 1/6, not Keras 2's 0.2)."""
    return jax.nn.relu6(x + 3.0) / 6.0


def hard_silu(x: jax.Array) -> jax.Array:
    """``x * hard_sigmoid(x)`` (Keras's ``hard_silu`` / ``hard_swish``)."""
    return x * hard_sigmoid(x)


def gelu(x: jax.Array, approximate: bool = False) -> jax.Array:
    """GELU, exact by default as Keras's (``jax.nn.gelu`` defaults to the tanh approximation)."""
    return jax.nn.gelu(x, approximate=approximate)


def mish(x: jax.Array) -> jax.Array:
    """``x * tanh(softplus(x))``."""
    return x * jnp.tanh(jax.nn.softplus(x))


def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Softmax over ``axis`` (the last by default)."""
    return jax.nn.softmax(x, axis=axis)


def log_softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """Log-softmax over ``axis`` (the last by default)."""
    return jax.nn.log_softmax(x, axis=axis)


def glu(x: jax.Array, axis: int = -1) -> jax.Array:
    """Gated linear unit: the first half of ``axis`` times the sigmoid of the second."""
    return jax.nn.glu(x, axis=axis)


def squareplus(x: jax.Array, b: float = 4) -> jax.Array:
    """``(x + sqrt(x**2 + b)) / 2``, a smooth ReLU."""
    return jax.nn.squareplus(x, b=b)


def hard_shrink(x: jax.Array, threshold: float = 0.5) -> jax.Array:
    """``x`` where ``|x| > threshold``, else 0."""
    return jnp.where(jnp.abs(x) > threshold, x, 0.0)


def soft_shrink(x: jax.Array, threshold: float = 0.5) -> jax.Array:
    """``x`` moved ``threshold`` towards 0, and 0 within ``threshold`` of it."""
    return jnp.where(x > threshold, x - threshold, jnp.where(x < -threshold, x + threshold, 0.0))


def tanh_shrink(x: jax.Array) -> jax.Array:
    """``x - tanh(x)``."""
    return x - jnp.tanh(x)


def threshold(x: jax.Array, threshold: float, default_value: float) -> jax.Array:
    """``x`` where ``x > threshold``, else ``default_value`` (no name lookup: it needs both arguments)."""
    return jnp.where(x > threshold, x, default_value)


def sparsemax(x: jax.Array, axis: int = -1) -> jax.Array:
    """The Euclidean projection of ``x`` onto the simplex along ``axis``: a softmax with exact zeros."""
    ranked = -jnp.sort(-x, axis=axis)
    cumulative = jnp.cumsum(ranked, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = -1
    r = jnp.arange(1, x.shape[axis] + 1).reshape(shape)
    support = ranked - (cumulative - 1) / r > 0
    tau = (jnp.sum(jnp.where(support, cumulative, 0.0), axis=axis, keepdims=True) - 1) / jnp.sum(
        support, axis=axis, keepdims=True
    )
    return jnp.maximum(x - tau, 0.0)


# Keras's names for jax.nn's functions, so ``activations.sigmoid(x)`` works as in Keras
relu6 = jax.nn.relu6
sigmoid = jax.nn.sigmoid
tanh = jnp.tanh
selu = jax.nn.selu
silu = swish = jax.nn.silu
hard_swish = hard_silu
softplus = jax.nn.softplus
softsign = jax.nn.soft_sign
exponential = jnp.exp
log_sigmoid = jax.nn.log_sigmoid
sparse_plus = jax.nn.sparse_plus
sparse_sigmoid = jax.nn.sparse_sigmoid
hard_tanh = jax.nn.hard_tanh


ACTIVATIONS: dict[str, Callable] = {
    "linear": linear,
    "relu": relu,
    "relu6": relu6,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "gelu": gelu,
    "elu": elu,
    "celu": celu,
    "selu": selu,
    "silu": silu,
    "swish": swish,
    "hard_silu": hard_silu,
    "hard_swish": hard_swish,
    "softplus": softplus,
    "softsign": softsign,
    "exponential": exponential,
    "mish": mish,
    "log_sigmoid": log_sigmoid,
    "glu": glu,
    "squareplus": squareplus,
    "hard_shrink": hard_shrink,
    "soft_shrink": soft_shrink,
    "tanh_shrink": tanh_shrink,
    "hard_tanh": hard_tanh,
    "sparse_plus": sparse_plus,
    "sparse_sigmoid": sparse_sigmoid,
    "sparsemax": sparsemax,
}


def get(identifier: str | Callable | None) -> Callable:
    """An activation function from a Keras name, a callable, or ``None`` (linear)."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in ACTIVATIONS:
        return ACTIVATIONS[identifier]
    raise ValueError(
        f"Unknown activation {identifier!r}. Valid names: {', '.join(sorted(ACTIVATIONS))}, "
        "or pass a function."
    )


def serialize(fn: Callable) -> str:
    """The Keras name of a built-in activation (used by ``get_config``)."""
    for name, known in ACTIVATIONS.items():
        if known is fn:
            return name
    return function_name(fn, "activation")
