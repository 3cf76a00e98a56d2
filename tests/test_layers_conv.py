"""Convolution layers against Keras 3: weights, outputs, shapes, gradients, errors."""

import inspect

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.layers import _depthwise

RNG = np.random.default_rng(0)
CF = "channels_first"


def data(*shape):
    return RNG.normal(size=shape).astype("float32")


def numpy_init(shape, dtype=None):
    """A Keras initializer drawing with numpy: random weights (biases too) without a compile per shape."""
    return RNG.normal(size=shape).astype("float32")


def keras_layer(name, kwargs):
    """The Keras layer ``name`` with every ``*_initializer`` argument drawing from numpy."""
    cls = getattr(keras.layers, name)
    inits = {k: numpy_init for k in inspect.signature(cls).parameters if k.endswith("_initializer")}
    return cls(**kwargs, **inits)


def keras_parity(name, kwargs, x):
    """Call the dagjax and Keras layer on ``x`` with Keras's weights; outputs must match.

    Also checks weight names, order and shapes, and that the symbolic output
    shape equals the shape ``apply`` returns.
    """
    k_layer = keras_layer(name, kwargs)
    expected = np.asarray(k_layer(x))
    layer = getattr(layers, name)(**kwargs)
    out = layer(dj.Input(shape=x.shape[1:]))
    assert [w.name for w in layer.weight_specs] == [v.name for v in k_layer.weights]
    assert [tuple(w.shape) for w in layer.weight_specs] == [tuple(v.shape) for v in k_layer.weights]
    params = {w.name: jnp.asarray(v) for w, v in zip(layer.weight_specs, k_layer.get_weights())}
    got, _ = jax.jit(layer.apply)(params, {}, x)
    assert out.shape == (None, *got.shape[1:])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


CONV_CASES = [
    ("Conv1D", dict(filters=4, kernel_size=3), (2, 8, 3)),
    ("Conv1D", dict(filters=2, kernel_size=2, strides=2, padding="same"), (2, 7, 3)),
    ("Conv1D", dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2), (2, 8, 2)),
    ("Conv1D", dict(filters=4, kernel_size=3, groups=2, activation="relu"), (2, 6, 4)),
    ("Conv1D", dict(filters=2, kernel_size=3, padding="causal", data_format=CF), (2, 3, 6)),
    ("Conv2D", dict(filters=4, kernel_size=3), (2, 6, 6, 3)),
    ("Conv2D", dict(filters=3, kernel_size=(2, 3), strides=(2, 1), padding="same"), (2, 7, 5, 2)),
    ("Conv2D", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same", use_bias=False), (2, 6, 6, 3)),
    ("Conv2D", dict(filters=4, kernel_size=2, groups=2, activation="tanh"), (2, 5, 5, 4)),
    ("Conv2D", dict(filters=3, kernel_size=3, strides=2, data_format=CF), (2, 3, 7, 6)),
    ("Conv2D", dict(filters=4, kernel_size=3, padding="same", groups=2, data_format=CF), (2, 4, 5, 5)),
    ("Conv3D", dict(filters=2, kernel_size=2), (2, 4, 4, 4, 3)),
    ("Conv3D", dict(filters=3, kernel_size=(3, 2, 2), strides=2, padding="same"), (2, 5, 4, 4, 2)),
    ("Conv3D", dict(filters=2, kernel_size=2, data_format=CF), (2, 3, 4, 3, 4)),
    ("Conv1DTranspose", dict(filters=3, kernel_size=3, strides=2), (2, 5, 2)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=4, strides=2, padding="same", output_padding=1),
     (2, 5, 3)),
    ("Conv2DTranspose", dict(filters=3, kernel_size=3), (2, 4, 4, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same"), (2, 4, 3, 3)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=2, strides=3), (2, 3, 3, 2)),
    ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, output_padding=1), (2, 3, 4, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=(3, 2), strides=2, padding="same", output_padding=(1, 0)),
     (2, 4, 4, 3)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"), (2, 4, 4, 2)),
    ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, data_format=CF), (2, 2, 4, 3)),
    ("Conv3DTranspose", dict(filters=2, kernel_size=2, strides=2, padding="same"), (2, 2, 3, 2, 3)),
    ("DepthwiseConv1D", dict(kernel_size=3), (2, 8, 3)),
    ("DepthwiseConv1D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2), (2, 7, 3)),
    ("DepthwiseConv1D", dict(kernel_size=2, dilation_rate=2, data_format=CF), (2, 3, 6)),
    ("DepthwiseConv2D", dict(kernel_size=3), (2, 6, 6, 3)),
    ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, padding="same", activation="relu"),
     (2, 5, 5, 2)),
    ("DepthwiseConv2D", dict(kernel_size=(2, 3), strides=(2, 1), padding="same"), (2, 7, 6, 3)),
    ("DepthwiseConv2D", dict(kernel_size=3, dilation_rate=2, use_bias=False), (2, 7, 7, 2)),
    ("DepthwiseConv2D", dict(kernel_size=3, strides=2, depth_multiplier=2, padding="same",
                             data_format=CF), (2, 3, 6, 5)),
    ("SeparableConv1D", dict(filters=4, kernel_size=3), (2, 8, 3)),
    ("SeparableConv1D", dict(filters=2, kernel_size=3, strides=2, padding="same", depth_multiplier=2),
     (2, 7, 3)),
    ("SeparableConv1D", dict(filters=3, kernel_size=2, data_format=CF), (2, 2, 6)),
    ("SeparableConv2D", dict(filters=4, kernel_size=3), (2, 6, 6, 3)),
    ("SeparableConv2D", dict(filters=3, kernel_size=3, depth_multiplier=2, padding="same", strides=2),
     (2, 7, 6, 2)),
    ("SeparableConv2D", dict(filters=2, kernel_size=2, dilation_rate=2, activation="relu"), (2, 6, 6, 3)),
    ("SeparableConv2D", dict(filters=4, kernel_size=3, padding="same", data_format=CF), (2, 3, 5, 5)),
]


@pytest.mark.parametrize("name,kwargs,shape", CONV_CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_keras_parity_and_symbolic_shape(name, kwargs, shape):
    keras_parity(name, kwargs, data(*shape))


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize(
    "strides,padding,dilation,multiplier,data_format",
    [(1, "valid", 1, 1, "channels_last"), (2, "same", 1, 2, "channels_last"),
     (1, "same", 2, 3, "channels_last"), (2, "valid", 1, 2, CF), (1, "same", 1, 1, CF)],
)
def test_both_depthwise_lowerings_match_keras(rank, strides, padding, dilation, multiplier, data_format):
    channels, size = 3, (7, 6)[:rank]
    shape = (2, *size, channels) if data_format == "channels_last" else (2, channels, *size)
    x, kernel = data(*shape), data(*(3,) * rank, channels, multiplier)
    args = ((strides,) * rank, padding, (dilation,) * rank, data_format)
    expected = keras.ops.depthwise_conv(x, kernel, args[0], padding, data_format, args[2])
    for lowering in (_depthwise.depthwise_conv_shifted, _depthwise.depthwise_conv_grouped):
        got = jax.jit(lowering, static_argnums=(2, 3, 4, 5))(x, kernel, *args)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def _has_grouped_conv(layer, x) -> bool:
    params = {w.name: jnp.zeros(w.shape) for w in layer.weight_specs}
    jaxpr = jax.make_jaxpr(lambda p, v: layer.apply(p, {}, v)[0])(params, x)
    return any(
        eqn.primitive.name == "conv_general_dilated" and eqn.params["feature_group_count"] > 1
        for eqn in jaxpr.jaxpr.eqns
    )


def test_depthwise_lowering_follows_backend(monkeypatch):
    x = data(2, 6, 6, 3)
    layer = layers.SeparableConv2D(4, 3)
    layer(dj.Input(shape=x.shape[1:]))
    assert not _has_grouped_conv(layer, x)  # tests run on the CPU: shifted multiply-adds
    monkeypatch.setattr(_depthwise.jax, "default_backend", lambda: "gpu")
    assert _has_grouped_conv(layer, x)


@pytest.mark.parametrize(
    "name,kwargs,shape,calls",
    [
        ("Conv1D", dict(filters=4, kernel_size=3, padding="causal"), (None, 3), [(2, 7, 3), (1, 4, 3)]),
        ("SeparableConv1D", dict(filters=2, kernel_size=2, strides=2), (None, 3), [(2, 7, 3), (2, 4, 3)]),
        ("Conv2D", dict(filters=2, kernel_size=3, strides=2, padding="same"), (None, None, 2),
         [(2, 5, 7, 2), (1, 3, 3, 2)]),
        ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2), (None, None, 2), [(2, 3, 4, 2)]),
        ("DepthwiseConv2D", dict(kernel_size=2), (None, 5, 2), [(2, 4, 5, 2), (1, 6, 5, 2)]),
    ],
)
def test_unknown_spatial_dims(name, kwargs, shape, calls):
    layer = getattr(layers, name)(**kwargs)
    out = layer(dj.Input(shape=shape))
    k_layer = keras_layer(name, kwargs)
    k_out = k_layer(keras.Input(shape=shape))
    assert out.shape == tuple(k_out.shape)
    params = {w.name: jnp.asarray(v) for w, v in zip(layer.weight_specs, k_layer.get_weights())}
    apply = jax.jit(layer.apply)
    for call_shape in calls:
        x = data(*call_shape)
        got, _ = apply(params, {}, x)
        assert all(o is None or o == g for o, g in zip(out.shape, got.shape)) and got.shape[0] == x.shape[0]
        np.testing.assert_allclose(got, k_layer(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (layers.Conv1D(2, 3, padding="causal", dilation_rate=2), (2, 7, 3)),
        (layers.Conv2D(2, 3, strides=2, groups=2), (2, 6, 6, 4)),
        (layers.Conv3D(2, 2), (2, 3, 3, 3, 2)),
        (layers.Conv2DTranspose(2, 3, strides=2, output_padding=1), (2, 3, 3, 2)),
        (layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"), (2, 5, 5, 2)),
        (layers.SeparableConv1D(3, 3, depth_multiplier=2), (2, 6, 2)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, layers.Layer) else None,
)
def test_gradients_flow(layer, shape):
    x = data(*shape)
    layer(dj.Input(shape=shape[1:]))
    params = {w.name: jnp.asarray(data(*w.shape)) for w in layer.weight_specs}
    grads = jax.jit(jax.grad(lambda p, v: jnp.sum(layer.apply(p, {}, v)[0] ** 2), argnums=(0, 1)))(params, x)
    for g in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(g)) and np.any(g != 0)


def test_wrong_rank_names_layer_rank_and_shape():
    expected = r"'conv2d' \(Conv2D\).*rank 4.*\(None, 8, 3\) of rank 3"
    with pytest.raises(layers.LayerInputError, match=expected):
        layers.Conv2D(4, 3)(dj.Input(shape=(8, 3)))
    with pytest.raises(layers.LayerInputError, match=r"rank 3 \(batch, steps, channels\)"):
        layers.SeparableConv1D(4, 3)(dj.Input(shape=(8, 8, 3)))


def test_build_time_errors():
    with pytest.raises(layers.LayerInputError, match=r"groups=3.*divide the input channels, got 4"):
        layers.Conv1D(3, 2, groups=3)(dj.Input(shape=(8, 4)))
    with pytest.raises(layers.LayerInputError, match=r"known channel dimension.*\(None, 5, 5, None\)"):
        layers.DepthwiseConv2D(3)(dj.Input(shape=(5, 5, None)))
    with pytest.raises(layers.LayerInputError, match=r"dilated kernel spanning \(5,\).*\(None, 4, 2\)"):
        layers.Conv1D(2, 3, dilation_rate=2)(dj.Input(shape=(4, 2)))
    with pytest.raises(ValueError, match="output_padding < strides"):
        layers.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match="padding"):
        layers.Conv2D(2, 3, padding="causal")


def test_config_round_trip():
    layer = layers.SeparableConv2D(4, (3, 2), strides=2, padding="same", depth_multiplier=2,
                                   activation="relu", pointwise_regularizer="l2", data_format=CF, name="sep")
    clone = layers.SeparableConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.kernel_size, clone.strides, clone.depth_multiplier) == ((3, 2), (2, 2), 2)


def test_small_cnn_matches_keras_through_set_weights():
    """A whole model: set_weights(keras.get_weights()) then the jitted forward pass."""
    x = data(2, 8, 8, 3)

    stack = [
        ("Conv2D", dict(filters=4, kernel_size=3, padding="same", activation="relu")),
        ("MaxPooling2D", {}),
        ("SeparableConv2D", dict(filters=4, kernel_size=3)),
        ("Conv2DTranspose", dict(filters=2, kernel_size=2, strides=2)),
        ("GlobalAveragePooling2D", {}),
    ]
    k_model = keras.Sequential([keras.Input(shape=(8, 8, 3))] + [keras_layer(n, kw) for n, kw in stack])
    model = dj.Sequential([dj.Input(shape=(8, 8, 3))] + [getattr(layers, n)(**kw) for n, kw in stack])
    model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(model(x), k_model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "layer", [layers.Conv2D(2, 3), layers.DepthwiseConv2D(3), layers.Conv2DTranspose(2, 2)],
    ids=lambda v: type(v).__name__,
)
def test_integer_images_are_cast_to_the_kernel_dtype(layer):
    out = layer(dj.Input(shape=(5, 5, 2), dtype="uint8"))
    assert out.dtype == np.float32
    params = {w.name: jnp.asarray(data(*w.shape)) for w in layer.weight_specs}
    pixels = RNG.integers(0, 255, (1, 5, 5, 2)).astype("uint8")
    got, _ = layer.apply(params, {}, pixels)
    want, _ = layer.apply(params, {}, pixels.astype("float32"))
    np.testing.assert_allclose(got, want)
