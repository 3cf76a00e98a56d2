"""Activation functions by Keras name.

>>> from dagjax import activations
>>> activations.get("relu")(jnp.array([-1.0, 2.0]))
Array([0., 2.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from dagjax._naming import function_name


def linear(x: jax.Array) -> jax.Array:
    """The identity: Keras's ``"linear"``, the activation ``None`` stands for."""
    return x


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """``relu6(x + 3) / 6``, Keras 3's piecewise-linear sigmoid (slope 1/6, not Keras 2's 0.2)."""
    return jax.nn.relu6(x + 3.0) / 6.0


def hard_silu(x: jax.Array) -> jax.Array:
    """``x * hard_sigmoid(x)`` (Keras's ``hard_silu`` / ``hard_swish``)."""
    return x * hard_sigmoid(x)


def leaky_relu(x: jax.Array, negative_slope: float = 0.2) -> jax.Array:
    """Leaky ReLU with Keras's default slope 0.2 (``jax.nn.leaky_relu`` defaults to 0.01)."""
    return jax.nn.leaky_relu(x, negative_slope)


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


ACTIVATIONS: dict[str, Callable] = {
    "linear": linear,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "leaky_relu": leaky_relu,
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": jnp.tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "gelu": gelu,
    "elu": jax.nn.elu,
    "celu": jax.nn.celu,
    "selu": jax.nn.selu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
    "exponential": jnp.exp,
    "mish": mish,
    "log_sigmoid": jax.nn.log_sigmoid,
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
