"""Helpers for checking a dagjax model against the same model built in Keras 3."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402


def assert_same_function(dj_model, keras_model, inputs, training=False, rtol=1e-5, atol=1e-5):
    """Copy Keras's weights into dagjax and compare outputs on ``inputs``."""
    dj_model.set_weights(keras_model.get_weights())
    expected = keras_model(inputs, training=training)
    got, _ = dj_model.apply(dj_model.params, dj_model.state, inputs, training=training)
    for e, g in zip(jax.tree_util.tree_leaves(expected), jax.tree_util.tree_leaves(got)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=rtol, atol=atol)


def assert_shape_invariant(model, inputs):
    """The symbolic output shapes agree with what ``apply`` returns."""
    got, _ = model.apply(model.params, model.state, inputs)
    for tensor, value in zip(model.outputs, jax.tree_util.tree_leaves(got)):
        assert len(tensor.shape) == value.ndim, (tensor.shape, value.shape)
        for sym, real in zip(tensor.shape, value.shape):
            assert sym is None or sym == real, (tensor.shape, value.shape)


def random_weights(keras_model, rng=None):
    """Random values for every Keras weight (positive for variances and stddevs), set in Keras too."""
    rng = rng or np.random.default_rng(0)
    out = []
    for w in keras_model.weights:
        value = rng.normal(0.0, 0.5, w.shape)
        if any(key in w.path for key in ("variance", "stddev")):
            value = np.abs(value) + 0.5
        out.append(value.astype("float32"))
    keras_model.set_weights(out)
    return out


def keras_and_dagjax(shape, keras_layer, dj_layer, rng=None):
    """The same one-layer model in Keras and dagjax, sharing random weights (biases included)."""
    import keras

    import dagjax as dj

    k_in = keras.Input(shape)
    k_model = keras.Model(k_in, keras_layer(k_in))
    d_in = dj.Input(shape)
    d_model = dj.Model(d_in, dj_layer(d_in))
    d_model.set_weights(random_weights(k_model, rng))
    return k_model, d_model
