"""More of Keras's JAX-backend step methods, each against Keras 3 from the same weights.

``predict_step(self, state, data) -> (outputs, non_trainable_variables)`` run by ``predict`` and
``predict_on_batch``: its batches unpadded (a short last batch as it is), the non-trainable values
it returns kept in the model, as Keras keeps them.
"""

import keras
import numpy as np
import pytest

import dagjax as dj

RNG = np.random.RandomState(0)
X = RNG.rand(7, 4).astype("f4")


def batch_statistics_predictor(lib):
    """A ``predict_step`` whose outputs and returned state depend on the whole batch: BatchNormalization
    in training mode (the batch's statistics, moving averages updated) and the batch's mean taken off."""

    class Predictor(lib.Model):
        def predict_step(self, state, data):
            trainable, non_trainable = state
            outputs, non_trainable = self.stateless_call(trainable, non_trainable, data, training=True)
            return outputs - lib.ops.mean(outputs, axis=0), non_trainable

    return Predictor


def _pair(make_class):
    dj.clear_session()
    keras.utils.clear_session()
    models = []
    for lib in (keras, dj):
        inputs = lib.Input(shape=(4,))
        x = lib.layers.BatchNormalization()(lib.layers.Dense(3)(inputs))
        models.append(make_class(lib)(inputs, lib.layers.Dense(2)(x)))
    theirs, ours = models
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def _assert_same_weights(theirs, ours):
    for mine, their in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, their, rtol=1e-5, atol=1e-6)


def test_a_keras_predict_step_predicts_as_keras():
    """Batches of 3, 3 and 1 rows: a padded last batch would change its mean and statistics."""
    theirs, ours = _pair(batch_statistics_predictor)
    expected = theirs.predict(X, batch_size=3, verbose=0)
    got = ours.predict(X, batch_size=3, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    _assert_same_weights(theirs, ours)  # the moving statistics the step returned, kept
    np.testing.assert_allclose(ours.predict_on_batch(X[:5]), theirs.predict_on_batch(X[:5]), atol=1e-6)
    _assert_same_weights(theirs, ours)


def test_the_stateful_predict_step_is_refused_naming_the_jax_form():
    class Stateful(dj.Model):
        def predict_step(self, data):
            return self(data)

    inputs = dj.Input(shape=(4,))
    model = Stateful(inputs, dj.layers.Dense(1)(inputs))
    with pytest.raises(NotImplementedError, match=r"form, predict_step\(self, state, data\) -> \(outputs"):
        model.predict(X, verbose=0)


def test_a_predict_step_returning_only_outputs_says_the_form():
    class OutputsOnly(dj.Model):
        def predict_step(self, state, data):
            return self.stateless_call(*state, data)[0]

    inputs = dj.Input(shape=(4,))
    model = OutputsOnly(inputs, dj.layers.Dense(1)(inputs))
    with pytest.raises(TypeError, match=r"OutputsOnly.predict_step must return \(outputs, non_trainable_var"):
        model.predict(X, verbose=0)
