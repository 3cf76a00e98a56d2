"""TimeDistributed passes each step's slice of its input's Keras mask to a wrapped layer that reads masks,
as Keras 3's does (``keras/src/layers/rnn/time_distributed.py``): against Keras 3, from the same weights."""

import jax
import keras
import numpy as np
import pytest
from keras_parity import random_weights

import dagjax as dj

# Padded batches: 0 is the padding index.
TOKENS = np.array([[3, 1, 4, 0, 0], [2, 0, 0, 0, 0], [5, 2, 6, 1, 3], [1, 1, 0, 0, 0]], "int32")
LABELS = np.random.default_rng(0).integers(0, 3, TOKENS.shape).astype("int32")
# Documents of 3 sentences of 4 words: a fully padded sentence, and sentences of 1 to 4 words.
DOCUMENTS = np.array([
    [[3, 1, 0, 0], [2, 2, 2, 2], [0, 0, 0, 0]],
    [[5, 0, 0, 0], [1, 4, 6, 0], [7, 1, 0, 0]],
], "int32")
CHEAP = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}  # weights are overwritten anyway


def _close(got, expected):
    for g, e in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-6)


def _step_scaler(k):
    """A Keras-style layer whose call reads the mask: zeroes masked rows of each step, and needs a mask."""

    class ZeroMaskedRows(k.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            assert mask is not None
            return inputs * k.ops.expand_dims(k.ops.cast(mask, inputs.dtype), -1) + 0.5

        def compute_output_shape(self, input_shape):
            return input_shape

    return ZeroMaskedRows()


def _tagger(k, inner):
    """Embedding(mask_zero) -> TimeDistributed(inner) -> LSTM over every step -> a softmax per step."""
    tokens = k.Input((None,), dtype="int32")
    x = k.layers.Embedding(8, 4, mask_zero=True)(tokens)
    x = k.layers.TimeDistributed(inner)(x)
    x = k.layers.LSTM(5, return_sequences=True, **CHEAP)(x)
    return k.Model(tokens, k.layers.TimeDistributed(k.layers.Dense(3, activation="softmax"))(x))


@pytest.mark.parametrize("inner", [lambda k: k.layers.Dense(4, activation="tanh"), _step_scaler],
                         ids=["dense", "call_takes_mask"])
def test_masked_sequence_through_time_distributed_matches_keras(inner):
    theirs, ours = _tagger(keras, inner(keras)), _tagger(dj, inner(dj))
    ours.set_weights(random_weights(theirs))
    _close(ours.predict(TOKENS, verbose=0), theirs.predict(TOKENS, verbose=0))
    for model in (theirs, ours):
        model.compile("sgd", "sparse_categorical_crossentropy")
    # Keras's loss weighs the real steps only: the mask went around (or through) TimeDistributed to the
    # loss; batches of 3, so dagjax pads and masks the last one too
    expected = theirs.evaluate(TOKENS, LABELS, batch_size=3, verbose=0)
    np.testing.assert_allclose(ours.evaluate(TOKENS, LABELS, batch_size=3, verbose=0), expected, rtol=1e-5)


def _hierarchical(k):
    """Words in sentences: each sentence's words go through an LSTM (in a model of its own too) and a masked
    average, padding skipped."""
    documents = k.Input((3, 4), dtype="int32")
    words = k.layers.Embedding(8, 3, mask_zero=True)(documents)
    sentence = k.Input((4, 3))
    encoder = k.Model(sentence, k.layers.LSTM(4, **CHEAP)(k.layers.Dense(3)(sentence)))
    sentences = k.layers.TimeDistributed(k.layers.LSTM(4, **CHEAP))(words)
    encoded = k.layers.TimeDistributed(encoder)(words)
    averages = k.layers.TimeDistributed(k.layers.GlobalAveragePooling1D())(words)
    return k.Model(documents, [sentences, averages, encoded])


def test_each_step_of_a_nested_sequence_gets_its_words_mask_as_in_keras():
    theirs, ours = _hierarchical(keras), _hierarchical(dj)
    ours.set_weights(random_weights(theirs))
    _close(ours(DOCUMENTS), theirs(DOCUMENTS))


def test_a_mask_that_does_not_fit_the_steps_is_refused_when_called():
    words = dj.layers.Embedding(8, 3)(dj.Input((3, 4), dtype="int32"))
    other = dj.Input((5,), dtype="bool")
    expected = r"'td' \(TimeDistributed\).*mask of shape \(None, 5\)"
    with pytest.raises(dj.layers.LayerInputError, match=expected):
        dj.layers.TimeDistributed(dj.layers.LSTM(4), name="td")(words, mask=other)


def _normalized(k):
    """BatchNormalization on a masked sequence, on its own and per step: moments over the real steps."""
    tokens = k.Input((5,), dtype="int32")
    x = k.layers.Embedding(8, 3, mask_zero=True)(tokens)
    whole = k.layers.BatchNormalization(momentum=0.5, name="whole")(x)
    per_step = k.layers.TimeDistributed(k.layers.BatchNormalization(momentum=0.5, name="per_step"))(x)
    return k.Model(tokens, [k.layers.LSTM(2, return_sequences=True, **CHEAP)(whole), per_step])


def test_batch_normalization_takes_moments_over_the_real_steps_as_keras():
    theirs, ours = _normalized(keras), _normalized(dj)
    ours.set_weights(random_weights(theirs))
    got, state = ours.apply(ours.params, ours.state, TOKENS, training=True)
    _close(got, theirs(TOKENS, training=True))  # Keras updates its moving statistics here
    for name in ("whole", "per_step"):
        layer = theirs.get_layer(name) if name == "whole" else theirs.layers[-1].layer
        new = state[name] if name == "whole" else state["time_distributed"][name]
        _close([new["moving_mean"], new["moving_variance"]], [layer.moving_mean, layer.moving_variance])
