"""Pooling, global pooling and resizing layers (UpSampling, ZeroPadding, Cropping) against Keras 3."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers

RNG = np.random.default_rng(0)

CF = "channels_first"

CASES = [
    ("MaxPooling1D", {}, (2, 7, 3)),
    ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 8, 3)),
    ("MaxPooling2D", {}, (2, 5, 6, 3)),
    ("MaxPooling2D", dict(pool_size=(3, 2), strides=(2, 1), padding="same"), (2, 7, 5, 2)),
    ("MaxPooling2D", dict(pool_size=2, strides=1, data_format=CF), (2, 3, 5, 4)),
    ("MaxPooling3D", {}, (2, 4, 5, 4, 2)),
    ("MaxPooling3D", dict(pool_size=3, strides=2, padding="same", data_format=CF), (2, 2, 5, 4, 5)),
    ("AveragePooling1D", dict(pool_size=2), (2, 7, 3)),
    ("AveragePooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 8, 3)),
    ("AveragePooling2D", dict(pool_size=2), (2, 6, 5, 3)),
    ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 7, 6, 2)),
    ("AveragePooling2D", dict(pool_size=(3, 2), strides=1, padding="same", data_format=CF), (2, 3, 5, 4)),
    ("AveragePooling3D", dict(pool_size=2, padding="same"), (2, 3, 5, 4, 2)),
    ("AveragePooling3D", dict(pool_size=(2, 1, 2), data_format=CF), (2, 2, 4, 3, 4)),
    ("GlobalMaxPooling1D", {}, (2, 7, 3)),
    ("GlobalMaxPooling1D", dict(keepdims=True, data_format=CF), (2, 3, 7)),
    ("GlobalMaxPooling2D", dict(keepdims=True), (2, 5, 4, 3)),
    ("GlobalMaxPooling2D", dict(data_format=CF), (2, 3, 5, 4)),
    ("GlobalMaxPooling3D", {}, (2, 3, 4, 2, 3)),
    ("GlobalAveragePooling1D", {}, (2, 7, 3)),
    ("GlobalAveragePooling1D", dict(keepdims=True), (2, 7, 3)),
    ("GlobalAveragePooling2D", {}, (2, 5, 4, 3)),
    ("GlobalAveragePooling2D", dict(keepdims=True, data_format=CF), (2, 3, 5, 4)),
    ("GlobalAveragePooling3D", dict(data_format=CF), (2, 3, 4, 2, 3)),
    ("UpSampling1D", {}, (2, 4, 3)),
    ("UpSampling1D", dict(size=3), (2, 4, 3)),
    ("UpSampling2D", {}, (2, 3, 4, 2)),
    ("UpSampling2D", dict(size=(2, 3), data_format=CF), (2, 2, 3, 4)),
    ("UpSampling2D", dict(size=(2, 3), interpolation="bilinear"), (2, 3, 4, 2)),
    ("UpSampling2D", dict(size=2, interpolation="bilinear", data_format=CF), (2, 2, 4, 3)),
    ("ZeroPadding1D", {}, (2, 4, 3)),
    ("ZeroPadding1D", dict(padding=(1, 2), data_format=CF), (2, 3, 4)),
    ("ZeroPadding2D", {}, (2, 3, 4, 2)),
    ("ZeroPadding2D", dict(padding=(1, 2)), (2, 3, 4, 2)),
    ("ZeroPadding2D", dict(padding=((1, 0), (2, 3)), data_format=CF), (2, 2, 3, 4)),
    ("ZeroPadding3D", dict(padding=((0, 1), 2, (1, 0))), (2, 2, 3, 2, 2)),
    ("Cropping1D", {}, (2, 5, 3)),
    ("Cropping1D", dict(cropping=(0, 2)), (2, 5, 3)),
    ("Cropping2D", {}, (2, 5, 4, 2)),
    ("Cropping2D", dict(cropping=((1, 0), (2, 1))), (2, 5, 6, 2)),
    ("Cropping2D", dict(cropping=1, data_format=CF), (2, 2, 5, 4)),
    ("Cropping3D", {}, (2, 4, 5, 3, 2)),
    ("Cropping3D", dict(cropping=((0, 1), (1, 2), 0), data_format=CF), (2, 2, 4, 5, 3)),
]


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_keras_parity_and_symbolic_shape(name, kwargs, shape):
    x = RNG.normal(size=shape).astype("float32")
    expected = getattr(keras.layers, name)(**kwargs)(x)
    layer = getattr(layers, name)(**kwargs)
    out = layer(dj.Input(shape=shape[1:]))
    got, _ = jax.jit(layer.apply)({}, {}, x)
    assert out.shape == (None, *got.shape[1:])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name,kwargs,dtype",
    [
        ("MaxPooling2D", {}, "int32"),
        ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same"), "int32"),
        ("MaxPooling1D", dict(pool_size=2, padding="same"), "int8"),
        ("MaxPooling1D", dict(pool_size=2, padding="same"), "uint8"),
    ],
)
def test_max_pooling_on_integers_matches_keras(name, kwargs, dtype):
    """Windows start from the dtype's minimum (-inf has no integer form); the output keeps the dtype."""
    info = np.iinfo(dtype)
    shape = (2, 5, 4, 1) if name.endswith("2D") else (2, 5, 1)
    x = RNG.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)
    x.flat[0] = info.min  # a window of minimums next to the "same" padding
    layer = getattr(layers, name)(**kwargs)
    out = layer(dj.Input(shape=shape[1:], dtype=dtype))
    got, _ = jax.jit(layer.apply)({}, {}, x)
    expected = getattr(keras.layers, name)(**kwargs)(x)
    assert out.dtype == got.dtype == np.dtype(expected.dtype) == np.dtype(dtype)
    np.testing.assert_array_equal(got, expected)


def test_average_pooling_same_ignores_padding():
    """At the border a "same" window holds fewer inputs; their mean is not diluted by zeros."""
    layer = layers.AveragePooling1D(pool_size=3, strides=1, padding="same")
    layer(dj.Input(shape=(4, 1)))
    got, _ = layer.apply({}, {}, jnp.arange(1.0, 5.0).reshape(1, 4, 1))
    np.testing.assert_allclose(got[0, :, 0], [1.5, 2.0, 3.0, 3.5])


@pytest.mark.parametrize(
    "name,kwargs,shape,calls",
    [
        ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (None, 3), [(2, 7, 3), (1, 4, 3)]),
        ("AveragePooling2D", dict(pool_size=2, padding="same"), (None, None, 2),
         [(2, 5, 3, 2), (1, 2, 4, 2)]),
        ("GlobalMaxPooling1D", {}, (None, 3), [(2, 5, 3)]),
        ("UpSampling2D", dict(interpolation="bilinear"), (None, 4, 2), [(2, 3, 4, 2)]),
        ("ZeroPadding2D", dict(padding=(1, 2)), (None, None, 2), [(2, 3, 1, 2)]),
        ("Cropping1D", dict(cropping=(1, 2)), (None, 3), [(2, 5, 3), (1, 4, 3)]),
    ],
)
def test_unknown_spatial_dims(name, kwargs, shape, calls):
    layer = getattr(layers, name)(**kwargs)
    out = layer(dj.Input(shape=shape))
    k_layer = getattr(keras.layers, name)(**kwargs)
    assert out.shape == tuple(k_layer(keras.Input(shape=shape)).shape)
    apply = jax.jit(layer.apply)
    for call_shape in calls:
        x = RNG.normal(size=call_shape).astype("float32")
        got, _ = apply({}, {}, x)
        assert all(o is None or o == g for o, g in zip(out.shape, got.shape)) and got.shape[0] == x.shape[0]
        np.testing.assert_allclose(got, k_layer(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "layer",
    [layers.MaxPooling2D(padding="same"), layers.AveragePooling2D(3, strides=2, padding="same"),
     layers.UpSampling2D(interpolation="bilinear")],
    ids=lambda v: type(v).__name__,
)
def test_gradients_flow(layer):
    x = RNG.normal(size=(2, 5, 5, 2)).astype("float32")
    layer(dj.Input(shape=x.shape[1:]))
    grad = jax.jit(jax.grad(lambda v: jnp.sum(layer.apply({}, {}, v)[0] ** 2)))(x)
    assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_build_time_errors():
    expected = r"'max_pooling2d'.*rank 4 \(batch, height, width, channels\).*\(None, 8, 3\) of rank 3"
    with pytest.raises(layers.LayerInputError, match=expected):
        layers.MaxPooling2D()(dj.Input(shape=(8, 3)))
    with pytest.raises(layers.LayerInputError, match=r"pool spanning \(3, 3\).*\(None, 2, 5, 1\)"):
        layers.AveragePooling2D(3)(dj.Input(shape=(2, 5, 1)))
    expected = r"'cropping2d'.*crops \(\(2, 2\), \(0, 0\)\).*\(None, 4, 5, 1\)"
    with pytest.raises(layers.LayerInputError, match=expected):
        layers.Cropping2D(((2, 2), 0))(dj.Input(shape=(4, 5, 1)))
    with pytest.raises(ValueError, match="interpolation"):
        layers.UpSampling2D(interpolation="area")
    with pytest.raises(ValueError, match="data_format"):
        layers.GlobalMaxPooling2D(data_format="NHWC")


@pytest.mark.parametrize(
    "layer",
    [layers.AveragePooling2D((3, 2), strides=1, padding="same", data_format=CF), layers.Cropping1D((0, 2)),
     layers.UpSampling1D(3), layers.ZeroPadding2D(((1, 0), (2, 3))),
     layers.GlobalMaxPooling1D(keepdims=True)],
    ids=lambda v: type(v).__name__,
)
def test_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
