"""Keras's dot-product and additive attention: ``Attention`` (Luong) and ``AdditiveAttention`` (Bahdanau).

Called as Keras calls them, on ``[query, value]`` or ``[query, value, key]``
(each ``(batch, steps, dim)``), with keyword options recorded on the graph node:

>>> q, v = dj.Input((None, 8)), dj.Input((None, 8))
>>> out, scores = layers.Attention()([q, v], return_attention_scores=True, use_causal_mask=True)

The inputs' Keras masks (or ``mask=[query_mask, value_mask]``) mask the
attention: a masked value step gets no weight and a masked query step outputs
zeros, as Keras's. Weights: ``scale`` (``use_scale``) and, for
``score_mode="concat"``, ``concat_score_weight``, as Keras names them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dagjax import initializers
from dagjax.layers._base import Layer, training_option
from dagjax.layers._specs import TensorSpec, WeightSpec

_SCORE_MODES = ("dot", "concat")


def attention_dropout(layer: Layer, weights: jax.Array, rate: float, training: bool, rng: Any) -> jax.Array:
    """Keras's dropout on attention weights: in training, each kept weight scaled by ``1 / (1 - rate)``."""
    if not (training and rate > 0):
        return weights
    if rng is None:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) needs an rng key for dropout when training=True: "
            "pass rng=jax.random.key(...) to apply."
        )
    keep = jax.random.bernoulli(rng, 1.0 - rate, weights.shape)
    return jnp.where(keep, weights / (1.0 - rate), 0.0).astype(weights.dtype)


class Attention(Layer):
    """Dot-product attention: ``softmax(query @ key^T [* scale]) @ value`` (``score_mode="dot"``).

    ``score_mode="concat"``: scores ``concat_score_weight * sum(tanh([scale *] (q + k)))``.
    """

    supports_masking = True
    uses_input_mask = True
    call_keywords = ("mask", "return_attention_scores", "use_causal_mask", "training")

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 seed: int | None = None, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        if score_mode not in _SCORE_MODES:
            raise ValueError(
                f"Invalid value for argument score_mode. Expected one of {set(_SCORE_MODES)}. "
                f"Received: score_mode={score_mode}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = seed
        self.uses_rng = self.dropout > 0

    # ------------------------------------------------------------------ building
    def __call__(self, inputs: Any, mask: Any = None, return_attention_scores: bool = False,
                 use_causal_mask: bool = False, training: Any = None) -> Any:
        """Record the call on ``[query, value(, key)]``; ``mask``: explicit ``[query_mask, value_mask]``."""
        options = training_option(self, training)
        if return_attention_scores:
            options["return_attention_scores"] = True
        if use_causal_mask:
            options["use_causal_mask"] = True
        if mask is not None:
            options["mask"] = list(mask)
        return self.record_call((list(inputs) if isinstance(inputs, (list, tuple)) else inputs,), options)

    def check_input(self, inputs: Any, *rest: Any) -> None:
        """A list ``[query, value]`` or ``[query, value, key]`` of rank-3 tensors; value and key alike."""
        if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
            raise self.input_error(
                "must be called on a list of inputs, namely [query, value] or [query, value, key], got "
                + (f"a list of {len(inputs)}" if isinstance(inputs, (list, tuple)) else type(inputs).__name__)
            )
        shapes = [tuple(x.shape) for x in inputs]
        if any(len(s) != 3 for s in shapes):
            raise self.input_error(f"expects [query, value(, key)] shaped (batch, steps, dim), got {shapes}")
        query, value, key = shapes[0], shapes[1], shapes[-1]
        if key[1] is not None and value[1] is not None and key[1] != value[1]:
            raise self.input_error(f"needs value and key with the same steps, got {value} and {key}")
        self._check_dims(query, key)

    def _check_dims(self, query: tuple, key: tuple) -> None:
        if query[-1] != key[-1]:
            raise self.input_error(f"needs query and key of the same last dim, got {query} and {key}")

    def declare_weights(self, inputs: Any, *rest: Any) -> list[WeightSpec]:
        """Keras's scalar ``scale`` (``use_scale``) and ``concat_score_weight`` (concat mode), both ones."""
        weights = [WeightSpec("scale", (), initializers.get("ones"))] if self.use_scale else []
        if self.score_mode == "concat":
            weights.append(WeightSpec("concat_score_weight", (), initializers.get("ones")))
        return weights

    # ------------------------------------------------------------------ running
    def scores(self, params: dict, query: jax.Array, key: jax.Array) -> jax.Array:
        """``(batch, Tq, Tv)`` attention scores, before masking and softmax."""
        if self.score_mode == "dot":
            scores = query @ jnp.swapaxes(key, -2, -1)
            return scores * params["scale"] if self.use_scale else scores
        total = query[..., :, None, :] + key[..., None, :, :]
        if self.use_scale:
            total = params["scale"] * total
        return params["concat_score_weight"] * jnp.sum(jnp.tanh(total), axis=-1)

    def apply(self, params: dict, state: dict, inputs: Any, training: bool = False, rng: Any = None,
              input_mask: Any = None, mask: Any = None, return_attention_scores: bool = False,
              use_causal_mask: bool = False) -> tuple[Any, dict]:
        """The attention output ``(batch, Tq, dim)``, and the weights ``(batch, Tq, Tv)`` if asked."""
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        masks = mask if mask is not None else (None if input_mask is None else input_mask[0])
        query_mask = masks[0] if masks else None
        value_mask = masks[1] if masks and len(masks) > 1 else None
        scores = self.scores(params, query, key)
        allowed = None if value_mask is None else value_mask.astype(bool)[:, None, :]
        if use_causal_mask:
            causal = jnp.tril(jnp.ones(scores.shape[-2:], bool))[None]
            allowed = causal if allowed is None else allowed & causal
        if allowed is not None:
            scores = jnp.where(allowed, scores, scores - 1.0e9)
        weights = jax.nn.softmax(scores, axis=-1)
        output = attention_dropout(self, weights, self.dropout, training, rng) @ value
        if query_mask is not None:
            output = jnp.where(query_mask.astype(bool)[..., None], output, 0.0)
        return ((output, weights) if return_attention_scores else output), state

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The query's mask (Keras's)."""
        return None if not mask or mask[0] is None else mask[0]

    def get_config(self) -> dict:
        """The base config plus ``use_scale``, ``score_mode``, ``dropout`` and ``seed``, as Keras's."""
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive attention: scores ``sum(scale * tanh(query + key))``, ``scale`` ``(dim,)`` (``use_scale``)."""

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, seed: int | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        super().__init__(use_scale=use_scale, dropout=dropout, seed=seed, name=name, **kwargs)

    def declare_weights(self, inputs: Any, *rest: Any) -> list[WeightSpec]:
        """Keras's ``scale`` of the query's last dim, glorot-uniform (``use_scale``)."""
        dim = TensorSpec(inputs[0].shape, inputs[0].dtype).shape[-1]
        return [WeightSpec("scale", (dim,), initializers.get("glorot_uniform"))] if self.use_scale else []

    def scores(self, params: dict, query: jax.Array, key: jax.Array) -> jax.Array:
        """``(batch, Tq, Tv)``: ``sum(scale * tanh(q + k))`` over the features."""
        total = jnp.tanh(query[..., :, None, :] + key[..., None, :, :])
        return jnp.sum(params["scale"] * total if self.use_scale else total, axis=-1)

    def get_config(self) -> dict:
        """Keras's AdditiveAttention config: no ``score_mode``."""
        config = super().get_config()
        del config["score_mode"]
        return config
