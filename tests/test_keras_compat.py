"""Fixes found by running Keras's own code on dagjax (``benchmarks/keras_compat``), each against Keras 3.

The measure itself (the guides' examples and Keras's ``functional_test.py`` with only their
imports changed) is a benchmark, too slow for the suite; these are its findings, small.
"""

import jax.numpy as jnp
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import backend, layers


def test_embedding_reads_float_indices_as_keras_does():
    # The Functional API guide feeds Embedding from Input(shape=(None,)), whose dtype is float32:
    # Keras casts the indices to int32 (truncating), so dagjax does too.
    k_in = keras.Input((None,))
    k_model = keras.Model(k_in, keras.layers.Embedding(6, 3)(k_in))
    d_in = dj.Input((None,))
    d_model = dj.Model(d_in, layers.Embedding(6, 3)(d_in))
    d_model.set_weights(k_model.get_weights())
    x = np.array([[0.0, 1.0, 2.7, 5.0]], "float32")
    np.testing.assert_allclose(np.asarray(d_model(x)), np.asarray(k_model(x)), rtol=1e-6)


def _three_models_and_their_ensemble(lib):
    def get_model():
        inputs = lib.Input(shape=(4,))
        return lib.Model(inputs, lib.layers.Dense(1)(inputs))

    members = [get_model() for _ in range(3)]
    inputs = lib.Input(shape=(4,))
    outputs = lib.layers.average([m(inputs) for m in members])
    return members, lib.Model(inputs, outputs)


def test_a_nested_model_brings_its_own_weights():
    # "By calling a model you aren't just reusing the architecture of the model, you're also
    # reusing its weights" (the Functional API guide): the ensemble of three models averages
    # the three models' own outputs, in dagjax as in Keras.
    members, ensemble = _three_models_and_their_ensemble(dj)
    k_members, k_ensemble = _three_models_and_their_ensemble(keras)
    for member, k_member in zip(members, k_members):
        k_member.set_weights(member.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    got = np.asarray(ensemble(x))
    np.testing.assert_allclose(got, np.asarray(k_ensemble(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, np.mean([np.asarray(m(x)) for m in members], axis=0), rtol=1e-5)

    # Training the ensemble must leave the members' arrays usable (a donating step copies first).
    ensemble.compile(optimizer="sgd", loss="mse")
    ensemble.fit(x, np.zeros((5, 1), "float32"), epochs=1, verbose=0)
    assert np.asarray(members[0](x)).shape == (5, 1)


@pytest.mark.parametrize(
    "dtype", [None, int, float, bool, "float16", np.float64, jnp.bfloat16, np.dtype("int8"), "int64"]
)
def test_backend_standardize_dtype_as_keras(dtype):
    assert backend.standardize_dtype(dtype) == keras.backend.standardize_dtype(dtype)


def test_backend_answers_as_keras_on_jax():
    assert backend.backend() == keras.backend.backend() == "jax"
    assert backend.image_data_format() == keras.backend.image_data_format()
    assert backend.floatx() == keras.backend.floatx()
    assert backend.epsilon() == keras.backend.epsilon()
    assert backend.is_keras_tensor(dj.Input((2,))) and not backend.is_keras_tensor(np.zeros(2))
    assert dj.models.Functional is dj.Model and dj.KerasTensor is dj.SymbolicTensor
