"""Weight objects: `model.weights` and `layer.weights` as in Keras 3, reading and writing the params."""

import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers


def _tower(api, lib):
    """Embedding, Conv1D, BatchNormalization, Bidirectional(LSTM), TimeDistributed(Dense), GRU in a
    nested model, then Dense: Keras's path rules for every kind of weight holder. (Zero initializers:
    the tests set the weights, and Keras compiles each random initializer, which is slow.)"""
    zero = {"kernel_initializer": "zeros"}
    zero_rnn = {**zero, "recurrent_initializer": "zeros"}
    tokens = api.Input((5,), dtype="int32")
    h = lib.Embedding(7, 3, embeddings_initializer="zeros")(tokens)
    h = lib.Conv1D(4, 2, **zero)(h)
    h = lib.BatchNormalization()(h)
    h = lib.Bidirectional(lib.LSTM(2, return_sequences=True, **zero_rnn))(h)
    h = lib.TimeDistributed(lib.Dense(2, **zero))(h)
    h = lib.GRU(2, **zero_rnn)(h)
    inner = api.Model(tokens, h)
    outer_in = api.Input((5,), dtype="int32")
    return api.Model(outer_in, lib.Dense(1, **zero)(inner(outer_in)))


@pytest.fixture(scope="module")
def keras_tower():
    keras.backend.clear_session()
    model = _tower(keras, keras.layers)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.weights])
    return model


def _described(weights):
    return [(w.path, w.name, tuple(w.shape), str(w.dtype), w.trainable) for w in weights]


def test_weights_lists_match_keras(keras_tower):
    model = _tower(dj, layers)
    assert _described(model.weights) == _described(keras_tower.weights)
    assert _described(model.trainable_weights) == _described(keras_tower.trainable_weights)
    assert _described(model.non_trainable_weights) == _described(keras_tower.non_trainable_weights)
    norm = model.layers[-2].get_layer("batch_normalization")
    assert [w.path for w in norm.weights] == [
        "batch_normalization/gamma", "batch_normalization/beta",
        "batch_normalization/moving_mean", "batch_normalization/moving_variance",
    ]
    norm.trainable = False  # as Keras: a frozen layer's weights all move to non_trainable_weights
    assert [w.path for w in model.non_trainable_weights][:4] == [w.path for w in norm.weights]


def test_weight_values_read_and_write_through_to_the_params(keras_tower):
    model = _tower(dj, layers)
    model.set_weights(keras_tower.get_weights())
    for got, expected in zip(model.weights, keras_tower.weights):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(model.get_weights(), model.weights))
    head = model.layers[-1]
    kernel = head.weights[0]
    assert kernel.path == "dense_1/kernel" and np.array_equal(kernel.value, model.params["dense_1"]["kernel"])
    kernel.assign(np.ones((2, 1)))
    assert np.array_equal(model.params["dense_1"]["kernel"], np.ones((2, 1)))
    assert np.array_equal(model.weights[-2].numpy(), np.ones((2, 1)))
    with pytest.raises(ValueError, match=r"'dense_1/kernel' has shape \(2, 1\); assign got .* \(3, 1\)"):
        kernel.assign(np.ones((3, 1)))


def test_layer_get_and_set_weights_follow_keras():
    inputs = dj.Input((3,))
    dense = layers.Dense(2)
    model = dj.Model(inputs, dense(inputs))
    kernel, bias = np.arange(6.0).reshape(3, 2), np.array([1.0, -1.0])
    dense.set_weights([kernel, bias])
    assert np.array_equal(model.params["dense"]["kernel"], kernel)
    assert all(np.array_equal(a, b) for a, b in zip(dense.get_weights(), [kernel, bias]))
    with pytest.raises(ValueError, match=r"layer 'dense' with a weight list of length 1, but the layer was "
                                         r"expecting 2 weights"):
        dense.set_weights([kernel])
    shape_error = r"'dense/kernel' has shape \(3, 2\), set_weights got shape \(2, 2\)"
    with pytest.raises(ValueError, match=shape_error):
        dense.set_weights([np.ones((2, 2)), bias])
    assert np.array_equal(model.params["dense"]["kernel"], kernel)  # nothing written on failure


def test_a_layer_reads_the_weights_of_the_last_model_built_with_it():
    inputs = dj.Input((3,))
    dense = layers.Dense(2)
    first = dj.Model(inputs, dense(inputs))
    inner_kernel = layers.Dense(2)
    encoder_in = dj.Input((3,))
    encoder = dj.Model(encoder_in, inner_kernel(encoder_in))
    second = dj.Model(inputs, [dense(inputs), encoder(inputs)])
    dense.set_weights([np.ones((3, 2)), np.zeros(2)])
    assert np.array_equal(second.params["dense"]["kernel"], np.ones((3, 2)))
    assert not np.array_equal(first.params["dense"]["kernel"], np.ones((3, 2)))
    # A nested model's layers keep reading that model's own weights (as encoder.get_weights() does).
    inner_kernel.weights[0].assign(np.full((3, 2), 2.0))
    assert np.array_equal(encoder.params["dense_1"]["kernel"], np.full((3, 2), 2.0))
    assert second.weights[2].path == "dense_1/kernel"


def test_a_layer_in_no_model_holds_default_seeded_weights():
    dense = layers.Dense(2)
    assert dense.get_weights() == []  # unbuilt, as Keras
    inputs = dj.Input((3,))
    dense(inputs)
    alone = dense.get_weights()
    model = dj.Model(inputs, dense(inputs))
    assert all(np.array_equal(a, b) for a, b in zip(alone, model.get_weights()))


def test_a_built_in_layer_has_its_weights_as_attributes_and_models_list_the_same_objects():
    x = dj.Input((3,))
    dense = dj.layers.Dense(2)
    model = dj.Model(x, dense(x))
    assert dense.kernel is model.trainable_weights[0] and dense.bias in model.trainable_weights
    assert dense.kernel.path == "dense/kernel" and dense.kernel.shape == (3, 2)
    with pytest.raises(AttributeError, match="'Dense' object has no attribute 'gamma'"):
        _ = dense.gamma
