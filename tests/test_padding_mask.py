"""Padded last batches: layers with batch statistics see only the real rows, as Keras trains them."""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers, optimizers

RNG = np.random.default_rng(0)


def dense_bn(lib, renorm=False):
    x = lib.Input((3,))
    h = lib.layers.BatchNormalization(momentum=0.5, renorm=renorm, renorm_momentum=0.5)(x)
    return lib.Model(x, lib.layers.Dense(1)(h))


def conv_bn(lib):
    x = lib.Input((4, 4, 2))
    h = lib.layers.BatchNormalization(momentum=0.5)(lib.layers.Conv2D(2, 3)(x))
    return lib.Model(x, lib.layers.Dense(1)(lib.layers.Flatten()(h)))


def nested_bn(lib):
    x = lib.Input((3,))
    inner_in = lib.Input((3,))
    inner = lib.Model(inner_in, lib.layers.BatchNormalization(momentum=0.5)(lib.layers.Dense(3)(inner_in)))
    return lib.Model(x, lib.layers.Dense(1)(inner(x)))


def time_distributed_bn(lib):
    x = lib.Input((3, 2))
    h = lib.layers.TimeDistributed(lib.layers.BatchNormalization(momentum=0.5))(x)
    return lib.Model(x, lib.layers.Dense(1)(lib.layers.Flatten()(h)))


def _data(n, shape):
    x = (RNG.normal(size=(n, *shape)) * 3 + 1).astype("float32")
    return x, RNG.normal(size=(n, 1)).astype("float32")


def _assert_trees_close(got, expected):
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


def _fit_both(build, x, y, batch_size):
    """History losses and weights after fit in dagjax and in Keras, from the same initial weights."""
    model, kmodel = build(dj), build(keras)
    kmodel.set_weights(model.get_weights())
    model.compile(optimizers.SGD(0.02), "mse")
    kmodel.compile(keras.optimizers.SGD(0.02), "mse")
    fit = dict(batch_size=batch_size, epochs=2, shuffle=False, verbose=0)
    got = model.fit(x, y, **fit).history["loss"]
    expected = kmodel.fit(x, y, **fit).history["loss"]
    return (got, model.get_weights()), (expected, kmodel.get_weights())


@pytest.mark.parametrize(
    "build, shape, n, batch_size",
    [
        (dense_bn, (3,), 11, 4),  # last batch: 3 real rows, 1 padding
        (lambda lib: dense_bn(lib, renorm=True), (3,), 11, 4),
        (conv_bn, (4, 4, 2), 7, 3),  # last batch: 1 real row, 2 padding
        (dense_bn, (3,), 5, 8),  # batch_size > N: the only batch is padded
        (nested_bn, (3,), 11, 4),
        (time_distributed_bn, (3, 2), 7, 3),  # statistics per time step, of the real rows
    ],
    ids=["dense", "renorm", "conv", "batch_over_n", "nested", "time_distributed"],
)
def test_fit_with_padding_matches_keras(build, shape, n, batch_size):
    x, y = _data(n, shape)
    (got_loss, got_weights), (expected_loss, expected_weights) = _fit_both(build, x, y, batch_size)
    np.testing.assert_allclose(got_loss, expected_loss, rtol=1e-5)
    _assert_trees_close(got_weights, expected_weights)


@pytest.mark.parametrize("renorm", [False, True])
def test_masked_batch_norm_equals_batch_norm_on_the_real_rows(renorm):
    bn = layers.BatchNormalization(axis=1, momentum=0.5, renorm=renorm)
    x = RNG.normal(2.0, 3.0, size=(5, 2, 3)).astype("float32")
    params, state = bn.init(jax.random.key(0), x)
    mask = np.array([1, 0, 1, 1, 0], "float32")
    got, got_state = bn.apply(params, state, x, training=True, mask=mask)
    expected, expected_state = bn.apply(params, state, x[mask == 1], training=True)
    np.testing.assert_allclose(got[mask == 1], expected, rtol=1e-5, atol=1e-5)
    _assert_trees_close(jax.tree_util.tree_leaves(got_state), jax.tree_util.tree_leaves(expected_state))


def test_layers_opt_in_to_the_mask():
    """Only layers with ``uses_batch_mask`` get ``mask=``, and only in an epoch with padding."""
    seen = []

    class Opted(layers.Layer):
        uses_batch_mask = True

        def apply(self, params, state, x, training=False, rng=None, mask=None):
            seen.append(mask is not None)
            return x, state

    class Plain(layers.Layer):
        def call(self, params, x):
            return x

    x = dj.Input((2,))
    model = dj.Model(x, layers.Dense(1)(Plain()(Opted()(layers.Dense(2)(x)))))
    model.compile(optimizers.SGD(0.1), "mse")
    model.fit(*_data(6, (2,)), batch_size=3, verbose=0)
    assert True not in seen
    model.fit(*_data(5, (2,)), batch_size=3, verbose=0)
    assert True in seen
