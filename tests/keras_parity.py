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
