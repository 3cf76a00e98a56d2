"""Keras masks against Keras 3: Embedding(mask_zero), Masking, RNNs, merges, pooling, losses, metrics."""

import warnings

import jax
import keras
import numpy as np
import pytest
from keras_parity import random_weights

import dagjax as dj
from dagjax import layers

RNG = np.random.default_rng(0)
# Padded batches: 0 is the padding index, the rows have 3, 1, 5 and 2 real steps.
TOKENS = np.array([[3, 1, 4, 0, 0], [2, 0, 0, 0, 0], [5, 2, 6, 1, 3], [1, 1, 0, 0, 0]], "int32")
LABELS = RNG.integers(0, 3, TOKENS.shape).astype("int32")
CHEAP = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}  # weights are overwritten anyway


def _same(got, expected, atol=1e-5):
    got, expected = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=atol)


def _tagger(lib, inputs):
    """DLwP's masked tagger: Embedding(mask_zero) -> LSTM over every step -> Dense softmax per step."""
    x = lib.layers.Embedding(8, 4, mask_zero=True)(inputs)
    x = lib.layers.LSTM(5, return_sequences=True, **CHEAP)(x)
    return lib.Model(inputs, lib.layers.Dense(3, activation="softmax")(x))


@pytest.fixture(scope="module")
def taggers():
    k_model = _tagger(keras, keras.Input((None,), dtype="int32"))
    d_model = _tagger(dj, dj.Input((None,), dtype="int32"))
    d_model.set_weights(random_weights(k_model))
    d_model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return k_model, d_model


def test_masked_lstm_outputs_loss_and_accuracy_match_keras(taggers):
    k_model, d_model = taggers
    k_out = k_model(TOKENS)  # eager: the output carries its Keras mask, which Keras's loss and metric read
    _same(d_model(TOKENS), k_out)
    k_accuracy = keras.metrics.SparseCategoricalAccuracy()
    k_accuracy.update_state(LABELS, k_out)
    # Keras's loss counts the real steps only
    losses = -np.log(np.take_along_axis(np.asarray(k_out), LABELS[..., None], -1)[..., 0])
    real = TOKENS != 0
    k_loss = float(keras.losses.SparseCategoricalCrossentropy()(LABELS, k_out))
    np.testing.assert_allclose(k_loss, losses[real].mean(), rtol=1e-5)
    # batches of 3 rows (the last one padded: its padding rows masked out as well as the padded steps),
    # each batch's loss over its real steps, averaged by rows, as Keras's evaluate averages batches
    per_batch = [losses[rows][real[rows]].mean() for rows in (slice(0, 3), slice(3, 4))]
    got = d_model.evaluate(TOKENS, LABELS, batch_size=3, verbose=0)
    expected = [(3 * per_batch[0] + per_batch[1]) / 4, float(k_accuracy.result())]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_fit_never_trains_the_padding_embedding(taggers):
    _, d_model = taggers
    (embedding,) = [layer.name for layer in d_model.layers if isinstance(layer, dj.layers.Embedding)]
    before = np.asarray(d_model.params[embedding]["embeddings"])
    history = d_model.fit(TOKENS, LABELS, batch_size=3, epochs=1, verbose=0).history
    after = np.asarray(d_model.params[embedding]["embeddings"])
    assert np.isfinite(history["loss"][0])
    np.testing.assert_array_equal(after[0], before[0])  # index 0 only ever sits on masked steps
    assert not np.allclose(after[1:7], before[1:7])


def _masked_gru(lib, inputs):
    x = lib.layers.Masking(mask_value=0.0)(inputs)
    return lib.Model(inputs, lib.layers.Dense(1)(lib.layers.GRU(3, **CHEAP)(x)))


def test_masking_skips_all_zero_steps_in_a_gru_as_keras():
    series = RNG.normal(size=(3, 4, 2)).astype("float32")
    series[0, 2:] = 0.0  # trailing padding
    series[1, 1] = 0.0  # a gap inside the sequence
    k_model = _masked_gru(keras, keras.Input((4, 2)))
    d_model = _masked_gru(dj, dj.Input((4, 2)))
    d_model.set_weights(random_weights(k_model))
    got = d_model(series)
    _same(got, k_model(series))
    # what a masked step holds changes nothing: the padded steps of row 0 zeroed by hand give the same
    noisy = series.copy()
    noisy[0, 2:] = 0.0
    noisy[1, 1] = 0.0
    _same(d_model(noisy), got)


def _branches(lib, inputs):
    """Masks through Bidirectional (its backward copy goes backwards), Add, Concatenate and pooling."""
    x = lib.layers.Embedding(8, 4, mask_zero=True)(inputs)
    both = lib.layers.Bidirectional(lib.layers.SimpleRNN(2, return_sequences=True, **CHEAP))(x)
    summed = lib.layers.Add()([both, lib.layers.Dense(4)(x)])
    joined = lib.layers.Concatenate()([summed, x])
    pooled = lib.layers.GlobalAveragePooling1D()(joined)
    return lib.Model(inputs, [lib.layers.Dense(2)(joined), lib.layers.Dense(1)(pooled)])


def test_masks_combine_through_wrappers_merges_and_pooling_as_keras():
    k_model = _branches(keras, keras.Input((5,), dtype="int32"))
    d_model = _branches(dj, dj.Input((5,), dtype="int32"))
    d_model.set_weights(random_weights(k_model))
    _same(d_model(TOKENS), k_model(TOKENS))
    steps, pooled = d_model.outputs
    assert steps.node.output_masks[0].shape == (None, 5)  # the sequence output keeps the mask
    assert pooled.node.output_masks is None


def test_a_layer_without_mask_support_drops_the_mask_with_keras_warning():
    tokens = dj.Input((5,), dtype="int32")
    x = layers.Embedding(8, 4, mask_zero=True)(tokens)
    with pytest.warns(UserWarning, match="'conv1d' .* does not support masking"):
        x = layers.Conv1D(2, 1, name="conv1d")(x)
    assert x.node.output_masks is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layers.LSTM(2)(x)  # no mask reaches it: no warning, all steps count
    model = dj.Model(tokens, y)
    _, masks = model.apply_masked(*model.init(jax.random.key(0)), TOKENS)[1:4:2]
    assert masks == [None]


def test_masks_come_from_the_graph_under_jit_and_pass_dense_layers():
    tokens = dj.Input((None,), dtype="int32")
    x = layers.Embedding(8, 4, mask_zero=True)(tokens)
    out = layers.Dense(2)(layers.Dropout(0.5)(x))
    model = dj.Model(tokens, out)
    params, state = model.init(jax.random.key(0))
    run = jax.jit(lambda p, s, t: model.apply_masked(p, s, t)[3])
    (mask,) = run(params, state, TOKENS)
    np.testing.assert_array_equal(np.asarray(mask), TOKENS != 0)
    assert out.node.output_masks[0].shape == (None, None)


def test_embedding_mask_zero_is_in_its_config():
    layer = layers.Embedding(8, 4, mask_zero=True)
    assert layer.get_config()["mask_zero"] is True
    assert layers.Embedding.from_config(layer.get_config()).mask_zero


def test_a_nested_model_gives_the_masks_made_inside_it_and_carries_those_given_to_it():
    embed = layers.Embedding(8, 4, mask_zero=True)
    inner = dj.Sequential([dj.Input((5,), dtype="int32"), embed, layers.Dense(2)])
    tokens = dj.Input((5,), dtype="int32")
    out = layers.Dense(1)(inner(tokens))
    model = dj.Model(tokens, out)
    (mask,) = model.apply_masked(*model.init(jax.random.key(0)), TOKENS)[3]
    np.testing.assert_array_equal(np.asarray(mask), TOKENS != 0)  # the outer loss counts real steps only
    steps = dj.Input((5, 1))
    carried = dj.Model(steps, layers.Dense(1)(steps))(out)  # a masked tensor into a model: Dense keeps it
    assert carried.node.output_masks[0].shape == (None, 5)


def _nested(lib):
    """Masks made outside a nested model reach its layers, and those its outputs keep reach the next ones."""
    inner_in = lib.Input((None, 3))
    reads = lib.Model(inner_in, lib.layers.LSTM(2, **CHEAP)(inner_in), name="reads")
    keeps = lib.Model(inner_in, lib.layers.Dense(3)(inner_in), name="keeps")
    tokens = lib.Input((None,), dtype="int32")
    x = lib.layers.Embedding(10, 3, mask_zero=True)(tokens)
    return lib.Model(tokens, [reads(x), lib.layers.GRU(2, **CHEAP)(keeps(x))])


def test_masks_pass_into_and_out_of_a_nested_model_as_keras(recwarn):
    k_model, d_model = _nested(keras), _nested(dj)  # Keras warns that the nested model drops the mask
    d_model.set_weights(random_weights(k_model))
    tokens = np.array([[3, 1, 4, 0, 0], [5, 9, 2, 6, 5]])
    for expected, got in zip(k_model(tokens), d_model(tokens)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    unmasked = d_model.apply(d_model.params, d_model.state, np.where(tokens == 0, 7, tokens))[0]
    assert not np.allclose(unmasked[0][0], d_model(tokens)[0][0])  # the padding really was skipped


def _explicit_mask(lib):
    """A mask given to a call (``mask=``), as Keras code may pass one and Keras's files record one."""
    tokens = lib.Input((None,), dtype="int32")
    x = lib.layers.Embedding(10, 3)(tokens)
    steps = lib.layers.LSTM(2, return_sequences=True, **CHEAP)(x, mask=lib.ops.not_equal(tokens, 0))
    return lib.Model(tokens, lib.layers.Dense(1)(lib.layers.GlobalAveragePooling1D()(steps)))


def test_a_mask_given_to_a_call_and_a_keras_file_that_records_masks(tmp_path):
    k_model, d_model = _explicit_mask(keras), _explicit_mask(dj)
    d_model.set_weights(random_weights(k_model))
    tokens = np.array([[3, 1, 4, 0, 0], [5, 9, 2, 6, 5]])
    expected = np.asarray(k_model(tokens))
    np.testing.assert_allclose(d_model(tokens), expected, rtol=1e-5, atol=1e-6)
    d_model.save(tmp_path / "m.dj")
    np.testing.assert_allclose(dj.load_model(tmp_path / "m.dj")(tokens), expected, rtol=1e-5, atol=1e-6)
    k_model.save(tmp_path / "m.keras")  # Keras writes the masks its calls computed as call arguments
    np.testing.assert_allclose(dj.load_model(tmp_path / "m.keras")(tokens), expected, rtol=1e-5, atol=1e-6)
