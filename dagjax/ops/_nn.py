"""Activations, ``one_hot``, ``cast``, norms and ``stop_gradient``: ``keras.ops`` names on ``jax.nn``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._operation import operation
from dagjax.ops._numpy import _floats


def _activation(name: str, keras_class: str, fn: Callable, doc: str) -> Callable:
    """The op ``name(x) = fn(x)`` of ``keras.ops.nn``."""

    def op(x: Any) -> jax.Array:
        return fn(jnp.asarray(x))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return operation(keras_class, "nn")(op)


relu = _activation("relu", "Relu", jax.nn.relu, "``max(x, 0)``.")
relu6 = _activation("relu6", "Relu6", jax.nn.relu6, "``min(max(x, 0), 6)``.")
sigmoid = _activation("sigmoid", "Sigmoid", jax.nn.sigmoid, "``1 / (1 + exp(-x))``.")
silu = _activation("silu", "Silu", jax.nn.silu, "``x * sigmoid(x)``.")
swish = silu  # keras.ops.swish is silu too
selu = _activation("selu", "Selu", jax.nn.selu, "Scaled exponential linear unit.")
softplus = _activation("softplus", "Softplus", jax.nn.softplus, "``log(1 + exp(x))``.")
softsign = _activation("softsign", "Softsign", jax.nn.soft_sign, "``x / (1 + |x|)``.")
hard_sigmoid = _activation("hard_sigmoid", "HardSigmoid", jax.nn.hard_sigmoid, "``relu6(x + 3) / 6``.")


@operation("Softmax", "nn")
def softmax(x: Any, axis: Any = -1) -> jax.Array:
    """``exp(x) / sum(exp(x))`` along ``axis``."""
    return jax.nn.softmax(x, axis=axis)


@operation("LogSoftmax", "nn")
def log_softmax(x: Any, axis: Any = -1) -> jax.Array:
    """``log(softmax(x))``, stably."""
    return jax.nn.log_softmax(x, axis=axis)


@operation("Gelu", "nn")
def gelu(x: Any, approximate: bool = True) -> jax.Array:
    """Gaussian error linear unit (the tanh approximation by default, as ``keras.ops``)."""
    return jax.nn.gelu(x, approximate)


@operation("Elu", "nn")
def elu(x: Any, alpha: float = 1.0) -> jax.Array:
    """``x`` if positive, else ``alpha * (exp(x) - 1)``."""
    return jax.nn.elu(x, alpha=alpha)


@operation("LeakyRelu", "nn")
def leaky_relu(x: Any, negative_slope: float = 0.2) -> jax.Array:
    """``x`` if positive, else ``negative_slope * x``."""
    return jax.nn.leaky_relu(x, negative_slope=negative_slope)


@operation("OneHot", "nn")
def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None, sparse: bool = False) -> jax.Array:
    """Integer labels as one-hot vectors (float32 unless ``dtype`` says otherwise)."""
    if sparse:
        raise NotImplementedError("dagjax.ops.one_hot(sparse=True): dagjax has dense tensors only.")
    return jax.nn.one_hot(x, num_classes, axis=axis, dtype=dtype or jnp.float32)


@operation("Normalize", "nn")
def normalize(x: Any, axis: Any = -1, order: int = 2, epsilon: Any = None) -> jax.Array:
    """``x / max(norm(x), epsilon)`` along ``axis``, as ``keras.ops.normalize``."""
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"dagjax.ops.normalize: `order` must be an int >= 1, got {order!r}.")
    x = jnp.asarray(x)
    epsilon = 1e-7 if epsilon is None else epsilon  # Keras's backend.epsilon()
    if order == 2:
        inv_norm = jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
        return x * jnp.minimum(inv_norm, 1.0 / epsilon)
    return x / jnp.maximum(jnp.linalg.norm(x, ord=order, axis=axis, keepdims=True), epsilon)


@operation("TopK", "math")
def top_k(x: Any, k: int, sorted: bool = True) -> tuple:  # noqa: A002 - keras.ops.top_k's name
    """``(values, indices)`` of the ``k`` largest entries along the last axis."""
    return jax.lax.top_k(x, k)


@operation("Cast", "core")
def cast(x: Any, dtype: Any) -> jax.Array:
    """``x`` as ``dtype``."""
    return jnp.asarray(x).astype(dtype)


@operation("StopGradient", "core", tensors=("variable",))
def stop_gradient(variable: Any) -> jax.Array:
    """``variable``, with no gradient flowing back through it."""
    return jax.lax.stop_gradient(variable)


@operation("Norm", "linalg")
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> jax.Array:  # noqa: A002
    """Vector or matrix norm, as ``jnp.linalg.norm`` (ints made float32)."""
    return jnp.linalg.norm(_floats(x), ord=ord, axis=axis, keepdims=keepdims)


__all__ = [
    "cast", "elu", "gelu", "hard_sigmoid", "leaky_relu", "log_softmax", "norm", "normalize", "one_hot",
    "relu", "relu6", "selu", "sigmoid", "silu", "softmax", "softplus", "softsign", "stop_gradient",
    "swish", "top_k",
]
