"""Autocasting: a layer's floating inputs and weights in its compute dtype, as Keras's ``Layer.__call__``.

``layer.apply`` computes in the dtypes it is given. Whatever runs layers in a
graph (``Model.apply``, shape inference) first passes each layer's inputs and
weights through :func:`autocast`, so that under ``mixed_bfloat16`` a Dense
multiplies bfloat16 by bfloat16 while its kernel stays float32 in ``params``
(the cast is in the program: gradients come back in float32).

Two class attributes say what a layer takes cast, as Keras's do:

- ``autocast`` (True): cast the floating inputs and weights; False for layers
  that choose their own precision (LayerNormalization, Embedding, a model,
  whose own layers cast for themselves);
- ``autocast_weights`` (True): also the weights; False where the weights must
  be read in float32 (BatchNormalization's scale and statistics).

Integer inputs (indices) are never cast. Under a float32 policy with float32
inputs nothing is cast and the program is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from dagjax.layers._specs import TensorSpec

if TYPE_CHECKING:
    from dagjax.layers._base import Layer


def _cast_floats(tree: Any, dtype: jnp.dtype) -> Any:
    """Every floating leaf of ``tree`` (arrays or shape specs) in ``dtype``; other leaves as they are."""

    def cast(x):
        if getattr(x, "dtype", None) is None:  # a constant an op takes (an int, a slice, None)
            return x
        if not jnp.issubdtype(x.dtype, jnp.floating) or x.dtype == dtype:
            return x
        if isinstance(x, TensorSpec):
            return TensorSpec(x.shape, dtype)
        if isinstance(x, jax.ShapeDtypeStruct):
            return jax.ShapeDtypeStruct(x.shape, dtype)
        return x.astype(dtype)

    return jax.tree_util.tree_map(cast, tree)


def autocast_weights(layer: Layer, params: dict) -> dict:
    """``params`` as ``layer`` reads them: its own floating weights in its compute dtype, if it casts them.

    A sublayer's weights (a wrapper's layer) follow that sublayer's own rule.
    """
    if not layer.autocast:
        return params
    subs = layer.sublayers
    own = {key: value for key, value in params.items() if key not in subs}
    if layer.autocast_weights:
        own = _cast_floats(own, jnp.dtype(layer.compute_dtype))
    inner = {key: autocast_weights(subs[key], value) for key, value in params.items() if key in subs}
    return {**own, **inner}


def autocast_inputs(layer: Layer, inputs: Any) -> Any:
    """``inputs`` (arrays, or specs for shape inference), floating leaves in ``layer``'s compute dtype."""
    if not layer.autocast:
        return inputs
    return _cast_floats(inputs, jnp.dtype(layer.compute_dtype))


def autocast(layer: Layer, params: dict, inputs: tuple) -> tuple[dict, tuple]:
    """``(params, inputs)`` as ``layer.apply`` takes them under its dtype policy (see the module)."""
    return autocast_weights(layer, params), autocast_inputs(layer, inputs)
