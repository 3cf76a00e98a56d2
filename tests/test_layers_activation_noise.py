"""Activation layers, noise layers, GroupNormalization and UnitNormalization against Keras 3 itself."""

import jax
import keras
import numpy as np
import pytest
from keras_parity import assert_shape_invariant, keras_and_dagjax

import dagjax as dj
from dagjax import activations, layers

RNG = np.random.default_rng(0)


def _both(name, *args, **kwargs):
    """A Keras layer and a dagjax layer of class ``name`` with the same arguments."""
    return getattr(keras.layers, name)(*args, **kwargs), getattr(layers, name)(*args, **kwargs)


def _assert_close(actual, expected, tol=1e-5):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=tol, atol=tol)


# ------------------------------------------------------------------ deterministic layers: same outputs
DETERMINISTIC = [
    ("ReLU", {}, (6,)),
    ("ReLU", {"max_value": 1.5, "negative_slope": 0.2, "threshold": 0.3}, (6,)),
    ("ReLU", {"max_value": 6.0}, (2, 3)),
    ("ReLU", {"threshold": 0.5}, (6,)),
    ("LeakyReLU", {}, (6,)),
    ("LeakyReLU", {"negative_slope": 0.05}, (2, 3)),
    ("ELU", {}, (6,)),
    ("ELU", {"alpha": 0.4}, (6,)),
    ("Softmax", {}, (5,)),
    ("Softmax", {"axis": 1}, (3, 4)),
    ("Softmax", {"axis": [1, 2]}, (3, 4)),
    ("PReLU", {}, (6,)),
    ("PReLU", {"shared_axes": [1, 2]}, (3, 4, 2)),
    ("PReLU", {"shared_axes": 1}, (3, 2)),
    ("UnitNormalization", {}, (5,)),
    ("UnitNormalization", {"axis": [1, 2]}, (3, 4)),
    ("UnitNormalization", {"axis": 1}, (3, 4)),
    ("GroupNormalization", {"groups": 2}, (3, 4)),
    ("GroupNormalization", {"groups": 3, "epsilon": 0.1}, (2, 2, 6)),
    ("GroupNormalization", {"groups": 2, "axis": 1}, (4, 3, 2)),
    ("GroupNormalization", {"groups": -1, "center": False}, (5, 3)),
    ("GroupNormalization", {"groups": 1, "scale": False}, (5, 3)),
]


@pytest.mark.parametrize("name, kwargs, shape", DETERMINISTIC)
def test_deterministic_layer_matches_keras_with_the_same_weights(name, kwargs, shape):
    k_model, d_model = keras_and_dagjax(shape, *_both(name, **kwargs), rng=np.random.default_rng(1))
    x = (3 * RNG.normal(size=(2, *shape))).astype("float32")
    for training in (False, True):
        got, _ = d_model.apply(d_model.params, d_model.state, x, training=training)
        _assert_close(got, k_model(x, training=training))
    assert [w.shape for w in d_model.get_weights()] == [tuple(w.shape) for w in k_model.weights]
    assert d_model.output_shape == tuple(k_model.output.shape)
    assert_shape_invariant(d_model, x)


def test_defaults_are_keras_3s():
    for name in ("ReLU", "LeakyReLU", "ELU", "Softmax", "PReLU", "UnitNormalization", "GroupNormalization"):
        ours, theirs = getattr(layers, name)().get_config(), getattr(keras.layers, name)().get_config()
        for key in ours.keys() & theirs.keys() - {"name", "dtype"}:
            if isinstance(theirs[key], dict):  # an initializer: Keras adds its module
                theirs[key] = {k: theirs[key][k] for k in ("class_name", "config")}
            assert ours[key] == theirs[key], (name, key)
    assert layers.LeakyReLU().negative_slope == 0.3  # Keras 3's layer; the function's default is 0.2
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        assert layers.LeakyReLU(alpha=0.1).negative_slope == 0.1


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("relu", {"negative_slope": 0.5}),
        ("relu", {"max_value": 2.0}),
        ("relu", {"threshold": 1.0, "negative_slope": 0.1, "max_value": 3.0}),
        ("leaky_relu", {"negative_slope": 0.01}),
        ("elu", {"alpha": 0.3}),
        ("celu", {"alpha": 2.0}),
        ("gelu", {"approximate": True}),
        ("softmax", {"axis": 0}),
        ("log_softmax", {"axis": 0}),
        ("glu", {"axis": 0}),
        ("squareplus", {"b": 1.0}),
        ("hard_shrink", {"threshold": 1.0}),
        ("soft_shrink", {"threshold": 1.0}),
        ("threshold", {"threshold": 0.5, "default_value": -1.0}),
        ("sparsemax", {"axis": 0}),
    ],
)
def test_activation_functions_take_keras_keyword_arguments(name, kwargs):
    x = (3 * RNG.normal(size=(4, 6))).astype("float32")
    expected = getattr(keras.activations, name)(x, **kwargs)
    _assert_close(getattr(activations, name)(x, **kwargs), expected, 1e-6)


def test_every_keras_activation_name_is_a_function_here():
    missing = [name for name in dir(keras.activations) if not name.startswith("_")
               and name not in ("get", "serialize", "deserialize") and not hasattr(activations, name)]
    assert not missing


# ------------------------------------------------------------------ noise layers: statistics, identity, rates
NOISE = [
    ("GaussianNoise", (0.5,), (32,)),
    ("GaussianDropout", (0.3,), (32,)),
    ("AlphaDropout", (0.2,), (32,)),
    ("SpatialDropout1D", (0.4,), (16, 32)),
    ("SpatialDropout2D", (0.4,), (4, 4, 32)),
    ("SpatialDropout3D", (0.4,), (2, 2, 2, 32)),
]


def _noisy(name, args, x):
    """Keras's and our layer's outputs on ``x``: Keras's in training, ours in training, ours and Keras's in
    inference."""
    k_layer, d_layer = _both(name, *args, seed=3)
    d_in = dj.Input(x.shape[1:])
    model = dj.Model(d_in, d_layer(d_in))
    ours, _ = model.apply(model.params, model.state, x, training=True, rng=jax.random.key(0))
    inference, _ = model.apply(model.params, model.state, x)
    keras_outputs = k_layer(x, training=True), k_layer(x)
    return np.asarray(keras_outputs[0]), np.asarray(ours), np.asarray(inference), np.asarray(keras_outputs[1])


@pytest.mark.parametrize("name, args, shape", NOISE)
def test_noise_layer_is_identity_in_inference_and_random_in_training(name, args, shape):
    x = RNG.normal(size=(64, *shape)).astype("float32")
    theirs, ours, inference, keras_inference = _noisy(name, args, x)
    np.testing.assert_array_equal(inference, x)
    np.testing.assert_array_equal(keras_inference, x)
    assert not np.allclose(ours, x) and ours.shape == theirs.shape == x.shape


@pytest.mark.parametrize("name, args, shape", NOISE)
def test_noise_layer_training_statistics_match_keras(name, args, shape):
    x = RNG.normal(size=(64, *shape)).astype("float32")
    theirs, ours, _, _ = _noisy(name, args, x)
    if name == "GaussianNoise":  # additive N(0, stddev^2)
        for out in (theirs, ours):
            assert abs((out - x).mean()) < 0.02 and abs((out - x).std() - 0.5) < 0.02
    elif name == "GaussianDropout":  # multiplicative N(1, rate / (1 - rate))
        for out in (theirs, ours):
            ratio = out / x
            assert abs(ratio.mean() - 1) < 0.03 and abs(ratio.std() - np.sqrt(0.3 / 0.7)) < 0.03
    elif name == "AlphaDropout":  # keeps a standard normal input's mean and variance
        for out in (theirs, ours):
            assert abs(out.mean()) < 0.05 and abs(out.std() - 1) < 0.05
    else:  # SpatialDropout: whole channels of a sample zeroed, the rest scaled by 1 / (1 - rate)
        for out in (theirs, ours):
            kept = out.reshape(64, -1, shape[-1]) != 0
            assert (kept.all(axis=1) | ~kept.any(axis=1)).all()
            assert abs(1 - kept.mean() - 0.4) < 0.06
            np.testing.assert_allclose(out[out != 0], (x / 0.6)[out != 0], rtol=1e-6)


def test_alpha_dropout_drops_to_keras_value_and_spatial_dropout_honours_channels_first():
    x = np.ones((256, 8), "float32")
    theirs, ours, _, _ = _noisy("AlphaDropout", (0.5,), x)
    np.testing.assert_allclose(np.unique(ours), np.unique(theirs), rtol=1e-6)  # kept and dropped values
    x = RNG.normal(size=(64, 6, 3, 3)).astype("float32")
    theirs, ours, _, _ = _noisy("SpatialDropout2D", (0.5, "channels_first"), x)
    for out in (theirs, ours):
        kept = out.reshape(64, 6, -1) != 0
        assert (kept.all(axis=2) | ~kept.any(axis=2)).all()


def test_noise_layers_need_an_rng_in_training_and_check_their_rates():
    x = dj.Input((4,))
    model = dj.Model(x, layers.GaussianNoise(0.1, name="noise")(x))
    with pytest.raises(ValueError, match=r"'noise' \(GaussianNoise\) needs an rng key"):
        model.apply(model.params, model.state, np.ones((2, 4), "float32"), training=True)
    with pytest.raises(ValueError, match=r"stddev must be in \[0, 1\]"):
        layers.GaussianNoise(1.5)
    for name in ("GaussianDropout", "AlphaDropout"):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
            getattr(layers, name)(1.0)
    with pytest.raises(ValueError, match="data_format"):
        layers.SpatialDropout2D(0.1, data_format="channels_middle")
    with pytest.raises(layers.LayerInputError, match="rank 3"):
        layers.SpatialDropout1D(0.1)(dj.Input((4,)))


def test_fit_trains_through_noise_layers_with_its_own_rng():
    x = dj.Input((8, 3))
    h = layers.SpatialDropout1D(0.2)(layers.GaussianNoise(0.1)(x))
    h = layers.AlphaDropout(0.1)(layers.GaussianDropout(0.1)(layers.Flatten()(h)))
    model = dj.Model(x, layers.Dense(1)(layers.PReLU()(h)))
    model.compile("sgd", "mse")
    data, target = RNG.normal(size=(32, 8, 3)).astype("float32"), RNG.normal(size=(32, 1)).astype("float32")
    before = model.get_weights()
    model.fit(data, target, epochs=2, batch_size=8, verbose=0)
    assert not np.allclose(before[0], model.get_weights()[0])
    np.testing.assert_array_equal(model.predict(data, verbose=0), model.predict(data, verbose=0))


# ------------------------------------------------------------------ errors in the user's words
def test_build_errors_name_the_layer_and_say_what_fits():
    with pytest.raises(layers.LayerInputError, match=r"'gn'.*cannot split the 6 channels.*into 4 groups"):
        layers.GroupNormalization(groups=4, name="gn")(dj.Input((6,)))
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        layers.GroupNormalization(groups=0)
    with pytest.raises(layers.LayerInputError, match=r"'p'.*known sizes.*\(None, None, 3\).*shared_axes"):
        layers.PReLU(name="p")(dj.Input((None, 3)))
    layers.PReLU(shared_axes=1)(dj.Input((None, 3)))  # sharing the unknown axis is the fix
    with pytest.raises(layers.LayerInputError, match=r"'p2'.*shared_axes \[3\]"):
        layers.PReLU(shared_axes=3, name="p2")(dj.Input((2, 3)))
    with pytest.raises(layers.LayerInputError, match=r"'u'.*axis 0, not a non-batch axis"):
        layers.UnitNormalization(axis=0, name="u")(dj.Input((3,)))
    with pytest.raises(ValueError, match="ReLU max_value must be a number >= 0"):
        layers.ReLU(max_value=-1.0)
