"""Every convolution lowering equals the reference (XLA's convolution) and Keras 3: outputs and gradients.

Each case traces one program holding every lowering the layer offers
(forward and backward), so a case costs one compile, made without XLA's
backend optimisations (the test checks the maths, not the speed).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_layers_conv import CF, data, keras_layer

import dagjax as dj
from dagjax import layers
from dagjax.layers import _depthwise

CASES = [
    ("Conv1D", dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2), (2, 8, 2)),
    ("Conv1D", dict(filters=4, kernel_size=3, groups=2, activation="relu"), (2, 6, 4)),
    ("Conv2D", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same", use_bias=False), (2, 6, 6, 3)),
    ("Conv2D", dict(filters=4, kernel_size=3, padding="same", groups=2, data_format=CF), (2, 4, 5, 5)),
    ("Conv3D", dict(filters=3, kernel_size=(3, 2, 2), strides=2, padding="same"), (2, 5, 4, 4, 2)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=4, strides=2, padding="same", output_padding=1),
     (2, 5, 3)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"), (2, 4, 4, 2)),
    ("Conv3DTranspose", dict(filters=2, kernel_size=2, strides=2, padding="same"), (2, 2, 3, 2, 3)),
    ("DepthwiseConv2D", dict(kernel_size=3, dilation_rate=2, depth_multiplier=3), (2, 7, 7, 2)),
    ("SeparableConv2D", dict(filters=3, kernel_size=3, depth_multiplier=2, padding="same", strides=2),
     (2, 7, 6, 2)),
]


def _offered(layer) -> list[str]:
    """Depthwise convolutions have no im2col (each channel is its own tiny matmul)."""
    if isinstance(layer, (_depthwise.DepthwiseConv, _depthwise.SeparableConv)):
        return ["xla", "shifted"]
    return ["xla", "im2col", "shifted"]


def every_lowering(layer, params, x):
    """``{lowering: (output, d(loss)/d(params, x))}`` for each lowering ``layer`` offers, in one program."""

    def run(params, x):
        results = {}
        for name in _offered(layer):
            layer.lowering = name

            def loss(p, v):
                y, _ = layer.apply(p, {}, v)
                return jnp.sum(jnp.sin(y)), y  # sin: a cotangent that differs per element

            (_, y), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)
            results[name] = (y, grads)
        layer.lowering = None
        return results

    # XLA's backend optimisations off: the same maths, compiled ~2.5x faster (tiny shapes, run once)
    compiled = jax.jit(run).lower(params, x).compile(compiler_options={"xla_backend_optimization_level": 0})
    return compiled(params, x)


def assert_all_equal(results, atol=1e-4):
    reference = results.pop("xla")
    for name, got in results.items():
        for r, g in zip(jax.tree_util.tree_leaves(reference), jax.tree_util.tree_leaves(got)):
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=atol, err_msg=f"lowering {name!r}")
    return reference


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_every_lowering_matches_the_reference_and_keras(name, kwargs, shape):
    x = data(*shape)
    k_layer = keras_layer(name, kwargs)
    expected = np.asarray(k_layer(x))
    layer = getattr(layers, name)(**kwargs)
    layer(dj.Input(shape=x.shape[1:]))
    params = {w.name: jnp.asarray(v) for w, v in zip(layer.weight_specs, k_layer.get_weights())}
    results = every_lowering(layer, params, x)
    for lowering, (y, _) in results.items():
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4, err_msg=f"{lowering} vs Keras")
    assert_all_equal(results)


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    rank=st.integers(1, 2),
    kernel=st.integers(1, 3),
    geometry=st.sampled_from([(1, 1), (2, 1), (1, 2), (3, 1)]),
    padding=st.sampled_from(["valid", "same"]),
    groups=st.sampled_from([1, 2]),
    transpose=st.booleans(),
    size=st.integers(5, 7),
)
def test_random_convolutions_lower_equally(rank, kernel, geometry, padding, groups, transpose, size):
    strides, dilation = geometry
    channels = 2 * groups
    x = data(2, *(size,) * rank, channels)
    if transpose:
        cls = (layers.Conv1DTranspose, layers.Conv2DTranspose)[rank - 1]
        layer = cls(3, kernel, strides=strides, padding=padding, dilation_rate=dilation)
    else:
        cls = (layers.Conv1D, layers.Conv2D)[rank - 1]
        layer = cls(2 * groups, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                    groups=groups)
    layer(dj.Input(shape=x.shape[1:]))
    params = {w.name: jnp.asarray(data(*w.shape)) for w in layer.weight_specs}
    assert_all_equal(every_lowering(layer, params, x))
