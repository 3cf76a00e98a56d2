"""Keras-style subclasses of built-in layers that implement ``apply`` (BatchNormalization, Dropout, LSTM,
GlobalAveragePooling1D): ``call`` overridden with ``super().call(...)``, against Keras 3 from the same
weights, training mode, random keys and state included."""

import jax
import keras
import numpy as np
import pytest
from keras_parity import random_weights

import dagjax as dj

TOKENS = np.array([[3, 1, 4, 0, 0], [2, 0, 0, 0, 0], [5, 2, 6, 1, 3], [1, 1, 0, 0, 0]], "int32")
CHEAP = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}  # weights are overwritten anyway


def _close(got, expected):
    got, expected = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-6)


def _subclasses(k):
    class ShiftedBatchNormalization(k.layers.BatchNormalization):
        def call(self, inputs, training=None, mask=None):
            return super().call(inputs, training=training, mask=mask) + 1.0

    class DoubledLSTM(k.layers.LSTM):
        def call(self, sequences, initial_state=None, mask=None, training=False):
            return 2.0 * super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    class MeanPlusOne(k.layers.GlobalAveragePooling1D):
        def call(self, inputs, mask=None):
            return super().call(inputs, mask=mask) + 1.0

    class ShiftedMean(MeanPlusOne):  # inherits the override
        pass

    return ShiftedBatchNormalization, DoubledLSTM, ShiftedMean


def _tagger(k):
    batch_norm, lstm, mean = _subclasses(k)
    tokens = k.Input((5,), dtype="int32")
    x = k.layers.Embedding(8, 3, mask_zero=True)(tokens)
    x = batch_norm(momentum=0.5, name="bn")(x)
    sequence = lstm(4, return_sequences=True, **CHEAP)(x)
    return k.Model(tokens, [sequence, mean()(x)])


def test_overridden_calls_of_apply_built_ins_match_keras_with_training_and_state():
    theirs, ours = _tagger(keras), _tagger(dj)
    ours.set_weights(random_weights(theirs))
    _close(ours(TOKENS), theirs(TOKENS))
    got, state = ours.apply(ours.params, ours.state, TOKENS, training=True)
    _close(got, theirs(TOKENS, training=True))  # masked batch moments; Keras updates its statistics here
    bn = theirs.get_layer("bn")
    _close([state["bn"]["moving_mean"], state["bn"]["moving_variance"]], [bn.moving_mean, bn.moving_variance])
    before = ours.state["bn"]
    ours.compile("sgd", ["mse", "mse"])
    ours.fit(TOKENS, [np.zeros((4, 5, 4)), np.zeros((4, 3))], epochs=1, verbose=0)  # one step
    _close(ours.state["bn"], state["bn"])  # fit keeps the statistics the overriding call updated
    assert not np.allclose(before["moving_mean"], state["bn"]["moving_mean"])


def _dropout(k):
    class HalvedDropout(k.layers.Dropout):
        def call(self, inputs, training=None):
            return super().call(inputs, training=training) * 0.5

    x = k.Input((200,))
    return k.Model(x, HalvedDropout(0.25)(x))


def test_an_overridden_dropout_draws_only_in_training_with_a_key_of_its_own():
    theirs, ours = _dropout(keras), _dropout(dj)
    x = np.ones((2, 200), "float32")
    _close(ours(x), theirs(x))
    run = jax.jit(lambda key: ours.apply(ours.params, ours.state, x, training=True, rng=key)[0])
    first, second = np.asarray(run(jax.random.key(1))), np.asarray(run(jax.random.key(2)))
    assert set(np.unique(first)) == {0.0, np.float32(0.5 / 0.75)}  # dropped, or rescaled, then halved
    assert 0.15 < np.mean(first == 0) < 0.35
    assert not np.array_equal(first, second)


def test_a_mask_for_a_built_in_that_reads_none_is_refused_naming_the_layer():
    class Masked(dj.layers.Dropout):
        def call(self, inputs, mask=None):
            return super().call(inputs, mask=mask)

    tokens = dj.Input((5,), dtype="int32")
    x = dj.layers.Embedding(8, 3, mask_zero=True)(tokens)
    with pytest.raises(dj.layers.LayerInputError, match=r"'masked' \(Masked\).*reads no Keras mask"):
        Masked(0.5, name="masked")(x)
