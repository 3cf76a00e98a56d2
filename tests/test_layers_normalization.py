"""BatchNormalization and LayerNormalization against Keras 3: outputs, moving statistics, errors."""

import warnings

import jax
import keras
import numpy as np
import pytest
from keras_parity import keras_and_dagjax

import dagjax as dj
from dagjax import layers

RNG = np.random.default_rng(0)






def _both(name, **kwargs):
    """A Keras layer and a dagjax layer of class ``name`` with the same arguments."""
    return getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)


def _assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({}, (3,)),
        ({"axis": 1, "center": False}, (3, 2, 2)),
        ({"scale": False, "epsilon": 1e-2}, (2, 3)),
    ],
)
def test_batch_norm_inference_matches_keras(kwargs, shape):
    k_model, d_model = keras_and_dagjax(shape, *_both("BatchNormalization", **kwargs))
    x = RNG.normal(size=(2, *shape)).astype("float32")
    _assert_close(d_model(x), k_model(x))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"momentum": 0.9},
        {"renorm": True, "momentum": 0.8, "renorm_momentum": 0.7},
        {"renorm": True, "renorm_clipping": {"rmax": 1.2, "rmin": 0.9, "dmax": 0.1}, "scale": False},
    ],
)
def test_batch_norm_training_outputs_and_moving_stats_match_keras(kwargs):
    shape = (2, 3)
    k_model, d_model = keras_and_dagjax(shape, *_both("BatchNormalization", **kwargs))
    step = jax.jit(lambda p, s, x: d_model.apply(p, s, x, training=True))
    for _ in range(2):
        x = RNG.normal(1.0, 2.0, size=(4, *shape)).astype("float32")
        out, d_model.state = step(d_model.params, d_model.state, x)
        _assert_close(out, k_model(x, training=True))
        for ours, theirs in zip(d_model.get_weights(), k_model.get_weights(), strict=True):
            _assert_close(ours, theirs)
    x = RNG.normal(size=(4, *shape)).astype("float32")
    _assert_close(d_model(x), k_model(x))  # inference with the updated statistics


def test_batch_norm_weight_order_and_state_layout():
    inputs = dj.Input((3,))
    bn = layers.BatchNormalization(renorm=True)
    params, state = dj.Model(inputs, bn(inputs)).init()
    assert [p[-1] for _, p in bn.weight_paths()] == [
        "gamma", "beta", "moving_mean", "moving_variance", "moving_stddev", "renorm_mean", "renorm_stddev",
    ]
    assert set(params[bn.name]) == {"gamma", "beta"}
    assert set(state[bn.name]) == {"moving_mean", "moving_variance", "moving_stddev", "renorm_mean",
                                   "renorm_stddev"}


def test_batch_norm_state_unchanged_outside_training_and_when_frozen():
    inputs = dj.Input((3,))
    live = layers.BatchNormalization(name="live")
    frozen = layers.BatchNormalization(trainable=False, name="frozen")
    model = dj.Model(inputs, [live(inputs), frozen(inputs)])
    params, state = model.init()
    x = RNG.normal(3.0, 1.0, size=(4, 3)).astype("float32")
    _, same = model.apply(params, state, x)
    (_, frozen_out), trained = model.apply(params, state, x, training=True)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, same, state))
    _assert_close(trained["live"]["moving_mean"], 0.01 * x.mean(axis=0))
    np.testing.assert_array_equal(trained["frozen"]["moving_mean"], state["frozen"]["moving_mean"])
    _assert_close(frozen_out, x / np.sqrt(1.0 + 1e-3))  # moving stats (0, 1), not batch stats


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({}, (2, 3)),
        ({"axis": [-2, -1], "epsilon": 1e-5}, (2, 3)),
        ({"axis": 1, "center": False}, (3, 2)),
        ({"scale": False}, (4,)),
    ],
)
def test_layer_norm_matches_keras(kwargs, shape):
    k_model, d_model = keras_and_dagjax(shape, *_both("LayerNormalization", **kwargs))
    x = RNG.normal(2.0, 3.0, size=(2, *shape)).astype("float32")
    _assert_close(d_model(x), k_model(x))


def test_layer_norm_rms_scaling_matches_keras():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        k_model, d_model = keras_and_dagjax((3,), keras.layers.LayerNormalization(rms_scaling=True),
                                 layers.LayerNormalization(rms_scaling=True))
    assert [p[-1] for _, p in d_model.weight_paths()] == ["gamma"]
    x = RNG.normal(1.0, 2.0, size=(2, 3)).astype("float32")
    _assert_close(d_model(x), k_model(x))


def test_layer_norm_rms_scaling_warning_says_what_it_computes():
    """It divides by the standard deviation, as Keras computes it (not the variance, not the RMS)."""
    with pytest.warns(UserWarning, match=r"divides by the standard deviation") as record:
        dj_layer = layers.LayerNormalization(axis=[1, 2], epsilon=0.1, rms_scaling=True)
    assert not any("by the variance" in str(w.message) for w in record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        keras_layer = keras.layers.LayerNormalization(axis=[1, 2], epsilon=0.1, rms_scaling=True)
    k_model, d_model = keras_and_dagjax((2, 3), keras_layer, dj_layer)
    x = RNG.normal(3.0, 2.0, size=(2, 2, 3)).astype("float32")
    gamma = np.asarray(d_model.params[dj_layer.name]["gamma"])
    std = np.sqrt(x.var(axis=(1, 2), keepdims=True) + 0.1)
    _assert_close(d_model(x), k_model(x))
    _assert_close(d_model(x), x / std * gamma)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (lambda: layers.BatchNormalization(), (None, 3)),
        (lambda: layers.BatchNormalization(axis=1, renorm=True), (3, None)),
        (lambda: layers.LayerNormalization(axis=[1, 2]), (2, 3)),
    ],
)
def test_symbolic_shape_equals_apply_shape(layer, shape):
    inputs = dj.Input(shape)
    out = layer()(inputs)
    model = dj.Model(inputs, out)
    concrete = tuple(2 if d is None else d for d in inputs.shape)
    for training in (False, True):
        y, _ = model.apply(*model.init(), np.ones(concrete, "float32"), training=training)
        assert out.shape[1:] == tuple(None if d is None else d for d in inputs.shape[1:])
        assert y.shape == tuple(2 if d is None else d for d in out.shape)
        assert y.dtype == out.dtype


def test_errors_name_the_layer_and_shapes():
    with pytest.raises(layers.LayerInputError, match=r"'bn'.*known sizes on axes \[1\].*\(None, None\)"):
        layers.BatchNormalization(name="bn")(dj.Input((None,)))
    with pytest.raises(layers.LayerInputError, match=r"'ln'.*axis 3, out of bounds.*\(None, 2, 3\)"):
        layers.LayerNormalization(axis=3, name="ln")(dj.Input((2, 3)))
    with pytest.raises(ValueError, match="renorm_clipping"):
        layers.BatchNormalization(renorm=True, renorm_clipping={"rmax": 1.0, "bogus": 2.0})


@pytest.mark.parametrize("container", ["model", "sequential", "time_distributed"])
def test_freezing_a_container_freezes_the_batch_normalization_inside_as_keras(container):
    """Keras sets ``trainable`` on every layer inside: the BN runs in inference mode and keeps its stats."""

    def build(lib):
        L = lib.layers
        if container == "model":
            i = lib.Input((4,))
            inner = lib.Model(i, L.BatchNormalization(name="bn")(i), name="inner")
        elif container == "sequential":
            inner = lib.Sequential([L.BatchNormalization(name="bn")], name="inner")
        else:
            inner = L.TimeDistributed(L.BatchNormalization(name="bn"), name="inner")
        x = lib.Input((3, 4) if container == "time_distributed" else (4,))
        out = L.Dense(1, name="out")(L.Flatten()(inner(x)) if container == "time_distributed" else inner(x))
        model = lib.Model(x, out)
        inner.trainable = False
        return model, inner

    (kmodel, _), (model, inner) = build(keras), build(dj)
    model.set_weights(kmodel.get_weights())
    rng = np.random.default_rng(1)
    features = (3, 4) if container == "time_distributed" else (4,)
    x = (3.0 + rng.normal(size=(32, *features))).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    for m, lib in ((kmodel, keras), (model, dj)):
        m.compile(lib.optimizers.SGD(0.01), "mse")
    fit = dict(batch_size=8, epochs=1, shuffle=False, verbose=0)
    expected = kmodel.fit(x, y, **fit).history["loss"]
    np.testing.assert_allclose(model.fit(x, y, **fit).history["loss"], expected, rtol=1e-5)
    for k, d in zip(kmodel.get_weights(), model.get_weights()):  # moving statistics untouched in both
        np.testing.assert_allclose(d, k, rtol=1e-5, atol=1e-6)
    assert [layer.trainable for layer in inner.sublayers.values()] == [False] * len(inner.sublayers)
