"""``MultiHeadAttention`` as Keras 3's: projections ``query``, ``key``, ``value``, ``attention_output``.

Inputs are ``(batch, steps, dim)``, or of higher rank with ``attention_axes``
saying which axes attention runs over (all between batch and features by
default: the pixels of ``(batch, H, W, C)`` images; ``layers._attention_axes``).
Weights nest under the four projections with Keras's
names and shapes (``query/kernel (dim, num_heads, key_dim)``, ...,
``attention_output/kernel (num_heads, value_dim, dim)``), in Keras's order, so
``set_weights(keras_model.get_weights())`` copies a Keras layer's weights.

Called as Keras calls it; ``attention_mask`` (``(batch, Tq..., Tv...)``, True to
attend), ``use_causal_mask`` and the inputs' Keras masks (``Embedding(mask_zero=True)``,
``Masking``) combine with a logical and:

>>> x = dj.Input((None, 16))
>>> y, scores = layers.MultiHeadAttention(2, 8)(x, x, use_causal_mask=True, return_attention_scores=True)

As Keras's, a call takes the masks off its inputs: layers called on them later
see none (the output carries the query's). As in Keras, a query step that may
attend nowhere gets the mean of the values when neither scores nor dropout are
asked for on sequences (the fused attention Keras runs then), zero weights otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from dagjax import initializers, regularizers
from dagjax.layers._attention import attention_dropout
from dagjax.layers._attention_axes import equations, mask_for_scores, resolve_axes
from dagjax.layers._base import Layer, training_option
from dagjax.layers._mask_flow import consume_masks
from dagjax.layers._specs import TensorSpec, WeightSpec

# Keras arguments dagjax does not implement, with the value that asks for nothing
# (Keras puts an activity regularizer on each projection: not supported either).
_UNSUPPORTED = {
    "sliding_window": None, "flash_attention": None, "use_gate": False, "activity_regularizer": None,
}


class _Projection(Layer):
    """Keras's ``EinsumDense`` as MultiHeadAttention uses it: the last ``contract`` dims to ``out_shape``."""

    def __init__(self, name: str, out_shape: tuple, contract: int, owner: MultiHeadAttention) -> None:
        super().__init__(name=name)
        self.out_shape, self.contract, self.owner = tuple(out_shape), contract, owner

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """``kernel (*contracted dims, *out_shape)`` and ``bias out_shape`` (with ``use_bias``)."""
        owner = self.owner
        kernel = (*spec.shape[-self.contract:], *self.out_shape)
        weights = [
            WeightSpec("kernel", kernel, owner.kernel_initializer, regularizer=owner.kernel_regularizer)
        ]
        if owner.use_bias:
            weights.append(WeightSpec("bias", self.out_shape, owner.bias_initializer,
                                      regularizer=owner.bias_regularizer))
        return weights

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``x`` contracted with the kernel over its last ``contract`` dims, plus the bias."""
        y = jnp.tensordot(x, params["kernel"], axes=self.contract)
        return y + params["bias"] if "bias" in params else y


class MultiHeadAttention(Layer):
    """Attention with ``num_heads`` heads of ``key_dim`` (``value_dim``) features each, as Keras's."""

    supports_masking = True
    uses_input_mask = True
    call_keywords = ("key", "attention_mask", "return_attention_scores", "training", "use_causal_mask")

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: Any = None,
        attention_axes: Any = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        for key, default in _UNSUPPORTED.items():
            value = kwargs.pop(key, default)
            if value not in (default, False):
                raise NotImplementedError(
                    f"MultiHeadAttention({key}={value!r}): dagjax does not support {key}; leave it out."
                )
        super().__init__(name=name, **kwargs)
        for arg, value in (("num_heads", num_heads), ("key_dim", key_dim), ("value_dim", value_dim)):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"MultiHeadAttention {arg} must be a positive int, got {value!r}.")
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        ints = isinstance(attention_axes, (list, tuple)) and all(isinstance(a, int) for a in attention_axes)
        if attention_axes is not None and not (ints and attention_axes):
            raise ValueError(
                f"MultiHeadAttention attention_axes must be an int, or a list or tuple of ints, "
                f"got {attention_axes!r}."
            )
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout, self.use_bias, self.seed = float(dropout), bool(use_bias), seed
        self.output_shape_arg = (output_shape,) if isinstance(output_shape, int) else (
            None if not output_shape else tuple(output_shape))
        self.attention_axes = None if attention_axes is None else tuple(attention_axes)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.uses_rng = self.dropout > 0
        self._projections: dict[str, _Projection] = {}

    # ------------------------------------------------------------------ building
    def __call__(self, query: Any, value: Any, key: Any = None, query_mask: Any = None,
                 value_mask: Any = None, key_mask: Any = None, attention_mask: Any = None,
                 return_attention_scores: bool = False, training: Any = None,
                 use_causal_mask: bool = False) -> Any:
        """Record the call; ``query_mask``/``value_mask``/``key_mask`` come from the inputs' Keras masks."""
        if any(m is not None for m in (query_mask, value_mask, key_mask)):
            raise TypeError(
                f"Layer '{self.name}' takes the query, value and key masks from its inputs' Keras masks "
                "(Embedding(mask_zero=True), Masking), not as arguments; pass attention_mask "
                "(batch, Tq, Tv) to mask pairs of steps."
            )
        args = (query, value) if key is None else (query, value, key)
        options = training_option(self, training)
        if attention_mask is not None:
            options["attention_mask"] = attention_mask
        if return_attention_scores:
            options["return_attention_scores"] = True
        if use_causal_mask:
            options["use_causal_mask"] = True
        outputs = self.record_call(args, options)
        consume_masks(*args)  # as Keras's: later calls on these tensors see no mask
        return outputs

    @property
    def sublayers(self) -> dict[str, Layer]:
        """The four projections, by Keras's names (empty until the layer is first called)."""
        return dict(self._projections)

    def check_input(self, query: Any, value: Any, key: Any = None) -> None:
        """Query, value and key of one rank (>= 3) whose axes outside attention agree; value and key
        that differ in their last dim only."""
        key = value if key is None else key
        shapes = [tuple(t.shape) for t in (query, value, key)]
        if len(shapes[0]) < 3 or len({len(s) for s in shapes}) != 1:
            raise self.input_error(
                f"expects query, value and key of one rank, (batch, steps, dim) or (batch, *axes, dim), "
                f"got {shapes}"
            )
        if shapes[1][1:-1] != shapes[2][1:-1]:
            raise self.input_error(
                f"needs value and key that differ in their last dim only, got {shapes[1]} and {shapes[2]}"
            )
        try:
            axes = resolve_axes(self.attention_axes, len(shapes[0]))
        except ValueError as err:
            raise self.input_error(f"got query of shape {shapes[0]}: {err}") from None
        others = [i for i in range(1, len(shapes[0]) - 1) if i not in axes]
        if any(None not in (shapes[0][i], shapes[1][i]) and shapes[0][i] != shapes[1][i] for i in others):
            raise self.input_error(
                f"attends over axes {axes}, so query and value must agree on axes {others}; got query "
                f"{shapes[0]} and value {shapes[1]}"
            )

    def declare_weights(self, query: TensorSpec, value: TensorSpec, key: TensorSpec | None = None) -> list:
        """None of its own: builds the four projections from the input shapes."""
        key = value if key is None else key
        heads = self.num_heads
        out_shape = self.output_shape_arg or (query.shape[-1],)
        if not self._projections:
            self._projections = {
                "query": _Projection("query", (heads, self.key_dim), 1, self),
                "key": _Projection("key", (heads, self.key_dim), 1, self),
                "value": _Projection("value", (heads, self.value_dim), 1, self),
                "attention_output": _Projection("attention_output", out_shape, 2, self),
            }
        p = self._projections
        p["query"]._ensure_built(query)
        p["key"]._ensure_built(key)
        p["value"]._ensure_built(value)
        combined = TensorSpec((*query.shape[:-1], heads, self.value_dim), query.dtype)
        p["attention_output"]._ensure_built(combined)
        return []

    # ------------------------------------------------------------------ running
    def _allowed(self, query, value, input_mask, attention_mask, use_causal_mask) -> jax.Array | None:
        """Keras's combined attention mask ``(batch or 1, Tq..., Tv...)``: True where a query may attend."""
        masks = list(input_mask or ()) + [None] * 3
        query_mask, value_mask = masks[0], masks[1]
        key_mask = masks[2] if len(input_mask or ()) > 2 else None
        allowed = None
        for part in (
            None if query_mask is None else jnp.expand_dims(query_mask.astype(bool), -1),
            None if value_mask is None else jnp.expand_dims(value_mask.astype(bool), -2),
            None if key_mask is None else jnp.expand_dims(key_mask.astype(bool), -2),
            jnp.tril(jnp.ones((query.shape[1], value.shape[1]), bool))[None] if use_causal_mask else None,
            None if attention_mask is None else attention_mask.astype(bool),
        ):
            if part is not None:
                allowed = part if allowed is None else allowed & part
        return allowed

    def apply(self, params: dict, state: dict, query: jax.Array, value: jax.Array,
              key: jax.Array | None = None, training: bool = False, rng: Any = None,
              input_mask: Any = None, attention_mask: Any = None, return_attention_scores: bool = False,
              use_causal_mask: bool = False) -> tuple[Any, dict]:
        """The output ``(batch, Tq..., *output_shape)``, and the weights if asked: ``(batch, heads, Tq, Tv)``
        for sequences, Keras's layout (``layers._attention_axes``) for other attention axes."""
        key = value if key is None else key
        axes = resolve_axes(self.attention_axes, query.ndim)
        scores_equation, combine_equation = equations(query.ndim + 1, axes)
        allowed = self._allowed(query, value, input_mask, attention_mask, use_causal_mask)
        project = {name: layer.call(params[name], x) for (name, layer), x in
                   zip(self._projections.items(), (query, key, value))}
        logits = jnp.einsum(scores_equation, project["query"], project["key"]) / math.sqrt(self.key_dim)
        # Keras's fused path: sequences, without scores or dropout
        fused = not (return_attention_scores or self.dropout > 0 or query.ndim != 3)
        if allowed is not None:
            allowed = mask_for_scores(allowed, logits.ndim, axes)  # one mask for every head
            floor = -0.7 * jnp.finfo(logits.dtype).max if fused else -1.0e9
            logits = jnp.where(allowed, logits, floor)
        weights = jax.nn.softmax(logits, axis=tuple(range(logits.ndim - len(axes), logits.ndim)))
        if allowed is not None and not fused:
            weights = jnp.where(allowed, weights, 0.0)
        dropped = attention_dropout(self, weights, self.dropout, training, rng)
        combined = jnp.einsum(combine_equation, dropped, project["value"])
        output = self._projections["attention_output"].call(params["attention_output"], combined)
        return ((output, weights) if return_attention_scores else output), state

    def compute_mask(self, query: Any, mask: Any = None) -> Any:
        """The query's mask (Keras's)."""
        return mask

    def get_config(self) -> dict:
        """Keras's MultiHeadAttention arguments."""
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_shape_arg,
            "attention_axes": self.attention_axes,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "seed": self.seed,
        }
