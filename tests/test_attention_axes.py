"""MultiHeadAttention's ``attention_axes`` on inputs of rank 3 to 5 against Keras 3, from the same weights:
outputs, attention scores, masks, and the saved config."""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.layers import LayerInputError

RNG = np.random.default_rng(0)


def _close(got, expected):
    got, expected = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)
    assert [np.shape(g) for g in got] == [np.shape(e) for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-5)


def _normal(*shape):
    return RNG.normal(size=shape).astype("float32")


def _twins(query, value, **config):
    """A Keras MultiHeadAttention built on these arrays, and a dagjax one in a model with its weights."""
    theirs = keras.layers.MultiHeadAttention(2, 3, **config)
    theirs(query, value)
    q, v = dj.Input(query.shape[1:]), dj.Input(value.shape[1:])
    ours = layers.MultiHeadAttention(2, 3, **config)
    model = dj.Model([q, v], list(ours(q, v, return_attention_scores=True)))
    model.set_weights([w.numpy() + RNG.normal(0, 0.1, w.shape).astype("float32") for w in theirs.weights])
    theirs.set_weights(model.get_weights())
    return theirs, model


@pytest.mark.parametrize("query_shape, value_shape, axes", [
    ((2, 4, 5), (2, 6, 5), (-2,)),
    ((2, 3, 4, 5), (2, 3, 4, 5), None),  # every axis between batch and features: the pixels of an image
    ((2, 3, 4, 5), (2, 3, 6, 5), (2,)),  # each row of the image on its own, cross attention to wider rows
    ((2, 3, 4, 5), (2, 5, 4, 5), 1),
    ((2, 2, 3, 2, 4), (2, 2, 3, 2, 4), (1, 3)),
    ((2, 2, 3, 2, 4), (2, 2, 3, 2, 4), None),
], ids=["rank3", "rank4_all", "rank4_axis2", "rank4_axis1", "rank5_axes13", "rank5_all"])
def test_outputs_and_scores_over_the_attention_axes_match_keras(query_shape, value_shape, axes):
    query, value = _normal(*query_shape), _normal(*value_shape)
    theirs, ours = _twins(query, value, attention_axes=axes)
    _close(ours([query, value]), theirs(query, value, return_attention_scores=True))


def test_attention_and_causal_masks_on_images_match_keras():
    images = _normal(2, 3, 4, 5)
    theirs, ours = _twins(images, images, attention_axes=(1,))
    causal = [layers.MultiHeadAttention(2, 3, attention_axes=(1,), name="mha")]
    x = dj.Input((3, 4, 5))
    model = dj.Model(x, list(causal[0](x, x, use_causal_mask=True, return_attention_scores=True)))
    model.set_weights(ours.get_weights())
    _close(model(images), theirs(images, images, use_causal_mask=True, return_attention_scores=True))
    # every pixel may attend to pixels of the same column and not below it: (batch, H, W, H, W) for all axes
    pixels = np.arange(12).reshape(3, 4)
    allowed = np.broadcast_to(pixels[:, :, None, None] % 4 == pixels[None, None] % 4, (2, 3, 4, 3, 4))
    allowed = allowed & (pixels[:, :, None, None] >= pixels[None, None])
    everywhere = keras.layers.MultiHeadAttention(2, 3)
    everywhere(images, images)
    x, mask = dj.Input((3, 4, 5)), dj.Input((3, 4, 3, 4), dtype="bool")
    model = dj.Model([x, mask], list(layers.MultiHeadAttention(2, 3)(
        x, x, attention_mask=mask, return_attention_scores=True)))
    model.set_weights(everywhere.get_weights())
    _close(model([images, allowed]),
           everywhere(images, images, attention_mask=allowed, return_attention_scores=True))


def _masked_rows(lib, tokens):
    """Padded rows of tokens (Embedding(mask_zero)), each row attending over its own real tokens."""
    x = lib.layers.Embedding(8, 5, mask_zero=True)(tokens)
    y = lib.layers.MultiHeadAttention(2, 3, attention_axes=(2,))(x, x)
    return lib.Model(tokens, lib.layers.Dense(2)(y))


def test_padding_masks_of_rows_of_tokens_match_keras(tmp_path):
    tokens = np.array([[[3, 1, 0], [2, 0, 0]], [[5, 2, 6], [1, 4, 0]]], "int32")
    theirs = _masked_rows(keras, keras.Input((2, 3), dtype="int32"))
    ours = _masked_rows(dj, dj.Input((2, 3), dtype="int32"))
    ours.set_weights([RNG.normal(0, 0.5, w.shape).astype("float32") for w in theirs.weights])
    theirs.set_weights(ours.get_weights())
    expected = theirs(tokens)
    _close(ours(tokens), expected)
    # the saved config keeps the axes: dagjax's file, and Keras's file read by Keras itself
    ours.save(tmp_path / "m.dj")
    _close(dj.load_model(tmp_path / "m.dj")(tokens), expected)
    ours.save(tmp_path / "m.keras", format="keras")
    _close(keras.models.load_model(tmp_path / "m.keras")(tokens), expected)
    theirs.save(tmp_path / "k.keras")
    _close(dj.load_model(tmp_path / "k.keras")(tokens), expected)


def test_config_round_trips_and_bad_axes_are_refused_when_called():
    layer = layers.MultiHeadAttention(2, 3, attention_axes=[2, -2], name="mha")
    assert layers.MultiHeadAttention.from_config(layer.get_config()).get_config() == layer.get_config()
    assert layer.get_config()["attention_axes"] == (2, -2)
    with pytest.raises(ValueError, match="attention_axes must be an int"):
        layers.MultiHeadAttention(2, 3, attention_axes="rows")
    with pytest.raises(LayerInputError, match=r"'mha' \(MultiHeadAttention\).*distinct.*within \[1, 2\]"):
        layer(dj.Input((3, 4, 5)), dj.Input((3, 4, 5)))  # -2 is axis 2 here: twice
    with pytest.raises(LayerInputError, match=r"within \[1, 2\]"):
        layers.MultiHeadAttention(2, 3, attention_axes=3)(dj.Input((3, 4, 5)), dj.Input((3, 4, 5)))
    with pytest.raises(LayerInputError, match=r"must agree on axes \[1\]"):
        layers.MultiHeadAttention(2, 3, attention_axes=2)(dj.Input((3, 4, 5)), dj.Input((2, 4, 5)))
    with pytest.raises(LayerInputError, match="of one rank"):
        layers.MultiHeadAttention(2, 3)(dj.Input((3, 4, 5)), dj.Input((4, 5)))
