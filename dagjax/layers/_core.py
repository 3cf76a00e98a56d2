"""Core layers: Dense, Embedding, Activation, Dropout, Lambda."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax import activations, initializers, regularizers
from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec, WeightSpec
from dagjax.layers._tunable import Tunable


def last_dim(layer: Layer, spec: TensorSpec, what: str = "last") -> int:
    """The input's last dim, which must be known to size a kernel."""
    dim = spec.shape[-1]
    if dim is None:
        raise layer.input_error(f"needs a known {what} dimension to size its weights, got shape {spec.shape}")
    return dim


def require_rng(layer: Layer, rng: jax.Array | None) -> jax.Array:
    """``rng``, which a layer that draws random numbers in training needs: a clear error if it is missing."""
    if rng is None:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) needs an rng key when training=True: "
            "pass rng=jax.random.key(...) to apply."
        )
    return rng


def filled_noise_shape(noise_shape: tuple | None, shape: tuple) -> tuple:
    """``noise_shape`` with its ``None`` dims taken from the input's ``shape`` (the input's shape if None)."""
    if noise_shape is None:
        return shape
    return tuple(s if n is None else n for s, n in zip(shape, noise_shape))


class Dense(Layer):
    """``activation(x @ kernel + bias)`` over the last axis."""

    supports_masking = True  # as Keras: the input's mask passes through unchanged
    min_ndim = 2

    def __init__(
        self,
        units: int,
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
        super().__init__(name=name, activity_regularizer=activity_regularizer, **kwargs)
        if int(units) <= 0:
            raise ValueError(f"Dense units must be a positive int, got {units!r}.")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """``kernel`` (in, units) from the known last input dim, and ``bias`` (units,) if ``use_bias``."""
        weights = [
            WeightSpec(
                "kernel",
                (last_dim(self, spec), self.units),
                self.kernel_initializer,
                regularizer=self.kernel_regularizer,
            )
        ]
        if self.use_bias:
            weights.append(
                WeightSpec("bias", (self.units,), self.bias_initializer, regularizer=self.bias_regularizer)
            )
        return weights

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input shape with its last dim replaced by ``units``, in the layer's dtype; no tracing."""
        return TensorSpec((*spec.shape[:-1], self.units), self.compute_dtype)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``activation(x @ kernel + bias)``, the matmul over the last axis of any-rank input."""
        y = jnp.matmul(x, params["kernel"])
        if self.use_bias:
            y = y + params["bias"]
        return self.activation(y)

    def get_config(self) -> dict:
        """Keras's Dense config: units, activation, bias, initializers and regularizers by name."""
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }


class Activation(Layer):
    """Applies an activation function by name or callable."""

    supports_masking = True  # as Keras: the input's mask passes through unchanged

    def __init__(self, activation: Any, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.activation = activations.get(activation)

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape and dtype: an activation is elementwise (softmax too keeps the shape)."""
        return TensorSpec(spec.shape, spec.dtype)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The activation function applied to ``x``."""
        return self.activation(x)

    def get_config(self) -> dict:
        """The base config plus the activation's Keras name."""
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of inputs in training and rescales the rest."""

    supports_masking = True  # as Keras: the input's mask passes through unchanged
    uses_rng = True
    uses_hyperparams = True

    def __init__(
        self,
        rate: float,
        noise_shape: tuple | None = None,
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1], got {rate!r}.")
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape and dtype, without tracing the random draw."""
        return TensorSpec(spec.shape, spec.dtype)

    def apply(
        self,
        params: dict,
        state: dict,
        x: jax.Array,
        training: bool = False,
        rng: jax.Array | None = None,
        hyperparams: dict | None = None,
    ) -> tuple[jax.Array, dict]:
        """Inverted dropout drawn from ``rng`` when training (mask of ``noise_shape``); identity otherwise.

        ``hyperparams={"rate": r}`` (a traced rate) replaces ``self.rate``: the
        draw and the rescaling are then always in the program.
        """
        rate = self.rate if not hyperparams else hyperparams.get("rate", self.rate)
        traced = not isinstance(rate, float)
        if not training or (not traced and rate == 0.0):
            return x, state
        rng = require_rng(self, rng)
        if not traced and rate == 1.0:
            return jnp.zeros_like(x), state
        keep = jax.random.bernoulli(rng, 1.0 - rate, self.mask_shape(x.shape))
        kept = jnp.where(rate < 1.0, 1.0 - rate, 1.0) if traced else 1.0 - rate  # rate 1: no division by 0
        return jnp.where(keep, x / kept, 0.0).astype(x.dtype), state

    def tunable(self) -> dict:
        """The rate, in [0, 1], as a value a step can take traced."""
        return {**super().tunable(), "rate": Tunable(self.rate, 0.0, 1.0)}

    def mask_shape(self, shape: tuple) -> tuple:
        """The keep mask's shape for an input of ``shape``."""
        return filled_noise_shape(self.noise_shape, shape)

    def get_config(self) -> dict:
        """Keras's Dropout config: ``rate``, ``noise_shape``, and ``seed`` (recorded; ``rng`` draws)."""
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class Lambda(Layer):
    """Wraps a pure function of the input(s): ``Lambda(lambda x: x * 2)``.

    Model files record only the function's name: loading needs the function
    passed in ``custom_objects``, so no code is ever read from a file.
    """

    def __init__(
        self,
        function: Callable,
        output_shape: Any = None,
        arguments: dict | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable, got {type(function).__name__}.")
        self.function = function
        self.arguments = dict(arguments or {})

    def call(self, params: dict, *inputs: Any) -> Any:
        """``function(*inputs, **arguments)``."""
        return self.function(*inputs, **self.arguments)

    def get_config(self) -> dict:
        """The base config plus the function's name (never its code) and ``arguments``."""
        return {
            **super().get_config(),
            "function": getattr(self.function, "__name__", "<lambda>"),
            "arguments": self.arguments,
        }


class Embedding(Layer):
    """Integer indices ``(batch, ...)`` -> vectors ``(batch, ..., output_dim)``.

    ``mask_zero=True`` treats index 0 as padding: the output carries the Keras mask ``inputs != 0``.
    """

    autocast = False  # as Keras: the rows are looked up in the float32 table, then cast

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        activity_regularizer: Any = None,
        mask_zero: bool = False,
        name: str | None = None,
        input_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, activity_regularizer=activity_regularizer, **kwargs)
        if input_length is not None:  # Keras 2's; Keras 3 ignores it with this warning
            warnings.warn("Argument `input_length` is deprecated. Just remove it.", stacklevel=2)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = True  # as Keras: it defines compute_mask (None without mask_zero)
        self.creates_mask = self.mask_zero
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)

    def check_input(self, spec: TensorSpec) -> None:
        """Numbers only (booleans and floats are read as indices, as Keras casts them to int32)."""
        if not (np.issubdtype(spec.dtype, np.number) or spec.dtype == np.bool_):
            raise self.input_error(
                f"expects integer indices, got dtype {spec.dtype.name} (shape {spec.shape}); "
                "declare the input as dj.Input(..., dtype='int32')"
            )

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """One ``embeddings`` table (input_dim, output_dim), whatever the input shape."""
        return [
            WeightSpec(
                "embeddings",
                (self.input_dim, self.output_dim),
                self.embeddings_initializer,
                regularizer=self.embeddings_regularizer,
            )
        ]

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The table's row for each index (``jnp.take``: an index past the end gives NaNs, not an error).

        Indices that are not int32 or int64 are cast to int32 first, as Keras's Embedding does (a float
        ``Input(shape=(None,))``, Keras's default dtype, feeds it unchanged).
        """
        if x.dtype not in (jnp.int32, jnp.int64):
            x = x.astype(jnp.int32)
        return jnp.take(params["embeddings"], x, axis=0).astype(self.compute_dtype)

    def compute_mask(self, inputs: jax.Array, mask: Any = None) -> jax.Array | None:
        """With ``mask_zero``, index 0 is padding: the mask is ``inputs != 0`` (Keras's)."""
        return jnp.not_equal(inputs, 0) if self.mask_zero else None

    def get_config(self) -> dict:
        """The base config plus the table's dims, initializer and regularizer, as Keras's."""
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
            "mask_zero": self.mask_zero,
        }
