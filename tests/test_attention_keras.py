"""MultiHeadAttention, Attention and AdditiveAttention against Keras 3: outputs, scores, masks, files."""

import jax
import keras
import numpy as np
import pytest
from keras_parity import assert_shape_invariant, random_weights

import dagjax as dj
from dagjax import layers
from dagjax.layers import LayerInputError

RNG = np.random.default_rng(0)
TOKENS = np.array([[3, 1, 4, 0, 0], [2, 0, 0, 0, 0], [5, 2, 6, 1, 3]], "int32")  # 0 pads


def _same(got, expected):
    got, expected = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-5)


def _self_attention(lib, inputs, scores):
    """Padding masks from Embedding(mask_zero) and a causal mask, as a decoder block has them."""
    x = lib.layers.Embedding(8, 6, mask_zero=True)(inputs)
    mha = lib.layers.MultiHeadAttention(2, 3, name="mha")
    if scores:
        y, weights = mha(x, x, use_causal_mask=True, return_attention_scores=True)
        return lib.Model(inputs, [lib.layers.Dense(2)(y), weights])
    return lib.Model(inputs, lib.layers.Dense(2)(mha(x, x, use_causal_mask=True)))


@pytest.mark.parametrize("scores", [False, True], ids=["fused", "with_scores"])
def test_causal_self_attention_with_padding_masks_matches_keras(scores):
    k_model = _self_attention(keras, keras.Input((None,), dtype="int32"), scores)
    d_model = _self_attention(dj, dj.Input((None,), dtype="int32"), scores)
    d_model.set_weights(random_weights(k_model))
    got = d_model(TOKENS)
    _same(got, k_model(TOKENS))
    if scores:  # masked keys get no weight; each real query's weights sum to one
        weights = np.asarray(got[1])
        assert np.all(weights[1, :, :, 1:] == 0.0)
        np.testing.assert_allclose(weights.sum(-1)[TOKENS[:, None, :].repeat(2, 1) != 0], 1.0, rtol=1e-5)
        return
    # the loss of the masked output counts the real steps only, as Keras's
    target = RNG.normal(size=(3, 5, 2)).astype("float32")
    d_model.compile("sgd", "mse")
    expected = keras.losses.MeanSquaredError()(target, k_model(TOKENS))
    np.testing.assert_allclose(d_model.evaluate(TOKENS, target, verbose=0), float(expected), rtol=1e-5)


def _cross_attention(lib, query, value, key, allowed):
    mha = lib.layers.MultiHeadAttention(3, 2, value_dim=4, output_shape=5, name="cross")
    outputs = mha(query, value, key=key, attention_mask=allowed, return_attention_scores=True)
    return lib.Model([query, value, key, allowed], list(outputs))


def test_cross_attention_with_key_and_attention_mask_matches_keras():
    shapes = [((4, 3), "float32"), ((5, 2), "float32"), ((5, 3), "float32"), ((4, 5), "bool")]
    k_model = _cross_attention(keras, *[keras.Input(s, dtype=d) for s, d in shapes])
    d_model = _cross_attention(dj, *[dj.Input(s, dtype=d) for s, d in shapes])
    d_model.set_weights(random_weights(k_model))
    data = [RNG.normal(size=(2, *s)).astype(d) for s, d in shapes[:3]] + [RNG.random((2, 4, 5)) > 0.3]
    _same(d_model(data), k_model(data))
    assert_shape_invariant(d_model, data)
    # Keras's weight names, shapes and order: query, key, value, attention_output
    assert [w.shape for w in k_model.weights] == [w.shape for w in d_model.get_weights()]
    assert list(d_model.params["cross"]) == ["query", "key", "value", "attention_output"]
    assert d_model.params["cross"]["attention_output"]["kernel"].shape == (3, 4, 5)


def _dot_attention(lib, query, value, layer):
    q = lib.layers.Masking()(query)
    v = lib.layers.Masking()(value)
    out, weights = layer([q, v], return_attention_scores=True, use_causal_mask=True)
    return lib.Model([query, value], [lib.layers.Dense(1)(out), weights])


@pytest.mark.parametrize("kind, kwargs", [
    ("Attention", {"use_scale": True}),
    ("AdditiveAttention", {}),
])
def test_attention_and_additive_attention_with_masks_and_scores_match_keras(kind, kwargs):
    query, value = RNG.normal(size=(2, 4, 3)).astype("float32"), RNG.normal(size=(2, 5, 3)).astype("float32")
    query[0, 3:] = 0.0
    value[1, 2:] = 0.0
    k_layer, d_layer = getattr(keras.layers, kind)(**kwargs), getattr(layers, kind)(**kwargs)
    k_model = _dot_attention(keras, keras.Input((4, 3)), keras.Input((5, 3)), k_layer)
    d_model = _dot_attention(dj, dj.Input((4, 3)), dj.Input((5, 3)), d_layer)
    d_model.set_weights(random_weights(k_model))
    got = d_model([query, value])
    _same(got, k_model([query, value]))
    assert np.all(np.asarray(got[1])[1, :, 2:] == 0.0)  # masked values get no weight


def _stack(lib, tokens):
    """MultiHeadAttention takes the masks off its inputs (Keras's): the next layer's value ``x`` has none."""
    x = lib.layers.Embedding(8, 6, mask_zero=True)(tokens)
    y, scores = lib.layers.MultiHeadAttention(2, 3)(x, x, use_causal_mask=True, return_attention_scores=True)
    z = lib.layers.AdditiveAttention()([y, x])
    return lib.Model(tokens, [lib.layers.GlobalAveragePooling1D()(z), scores])


def test_attention_layers_match_keras_and_save_and_load_with_their_call_options(tmp_path):
    k_model = _stack(keras, keras.Input((None,), dtype="int32"))
    model = _stack(dj, dj.Input((None,), dtype="int32"))
    model.set_weights(random_weights(k_model))
    expected = model(TOKENS)
    _same(expected, k_model(TOKENS))
    model.save(tmp_path / "m.dj")
    _same(dj.load_model(tmp_path / "m.dj")(TOKENS), expected)
    model.save(tmp_path / "m.keras", format="keras")  # Keras's own file: dagjax reads it back the same
    _same(dj.load_model(tmp_path / "m.keras")(TOKENS), expected)


def test_attention_calls_are_checked_when_the_graph_is_built():
    x = dj.Input((4, 3))
    mha = layers.MultiHeadAttention(2, 3)
    with pytest.raises(TypeError, match="masks from its inputs' Keras masks"):
        mha(x, x, query_mask=x)
    with pytest.raises(NotImplementedError, match="random numbers in inference"):
        layers.MultiHeadAttention(2, 3, dropout=0.5)(x, x, training=True)
    with pytest.raises(LayerInputError, match=r"value and key that differ in their last dim only"):
        mha(x, dj.Input((5, 3)), key=dj.Input((6, 3)))
    with pytest.raises(LayerInputError, match=r"\[query, value\] or \[query, value, key\]"):
        layers.Attention()([x])


def test_attention_dropout_draws_only_in_training():
    x = dj.Input((4, 3))
    model = dj.Model(x, layers.MultiHeadAttention(2, 3, dropout=0.5)(x, x))
    params, state = model.init(jax.random.key(0))
    data = RNG.normal(size=(2, 4, 3)).astype("float32")
    run = jax.jit(lambda key, training: model.apply(params, state, data, training=training, rng=key)[0],
                  static_argnums=1)
    train = [run(jax.random.key(k), True) for k in (1, 2)]
    assert not np.allclose(train[0], train[1])
    _same(run(jax.random.key(1), False), run(jax.random.key(2), False))
