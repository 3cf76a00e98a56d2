"""A recurrent layer's loop over time unrolled equals the scanned reference, outputs and gradients."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras_parity import keras_and_dagjax

import dagjax as dj
from dagjax import layers

X = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
X[1, 3:] = 0.0  # masked steps where a Masking layer is in front

CASES = [  # (class, arguments, a Masking layer in front, training with dropout)
    ("LSTM", {"units": 3, "return_sequences": True, "return_state": True, "zero_output_for_mask": True},
     True, False),
    ("GRU", {"units": 2, "go_backwards": True, "dropout": 0.3, "recurrent_dropout": 0.3}, False, True),
]


CHEAP_INIT = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}  # no QR to compile


def _primitives(jaxpr) -> set:
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                names |= _primitives(inner)
    return names


@pytest.mark.parametrize("name, kwargs, masked, training", CASES)
def test_unrolled_equals_scanned_in_outputs_and_gradients(name, kwargs, masked, training):
    x = dj.Input(X.shape[1:])
    rnn = getattr(layers, name)(**CHEAP_INIT, **kwargs)
    model = dj.Model(x, rnn(layers.Masking()(x) if masked else x))
    rng = np.random.default_rng(1)
    params = jax.tree_util.tree_map(lambda w: rng.normal(0, 0.5, w.shape).astype("float32"), model.params)

    def loss(params, inputs):
        out, _ = model.apply(params, model.state, inputs, training=training, rng=jax.random.key(1))
        return sum(jnp.sum(jnp.square(o)) for o in jax.tree_util.tree_leaves(out))

    results = {}
    for lowering in ("scan", "unrolled"):
        rnn.lowering = lowering
        traced = jax.jit(jax.value_and_grad(loss, argnums=(0, 1))).trace(params, X)
        assert ("scan" in _primitives(traced.jaxpr.jaxpr)) == (lowering == "scan")
        # XLA's backend optimisations off: the same maths, compiled faster (tiny shapes, run once)
        results[lowering] = traced.lower().compile({"xla_backend_optimization_level": 0})(params, X)
    unrolled, scanned = (jax.tree_util.tree_leaves(results[name]) for name in ("unrolled", "scan"))
    for got, want in zip(unrolled, scanned):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_keras_unroll_true_is_the_unrolled_loop_and_matches_keras():
    kwargs = {"units": 2, "return_sequences": True, "unroll": True, **CHEAP_INIT}
    k_model, d_model = keras_and_dagjax(X.shape[1:], keras.layers.LSTM(**kwargs), layers.LSTM(**kwargs))
    assert d_model.layers[-1].lowering == "unrolled"
    np.testing.assert_allclose(np.asarray(d_model(X)), np.asarray(k_model(X)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("unroll", [False, True])
def test_unroll_round_trips_through_the_config_as_in_keras(unroll):
    """``unroll`` and ``stateful`` are in the config as Keras writes them: an unrolled LSTM stays so."""
    layer = layers.LSTM(2, unroll=unroll)
    config = layer.get_config()
    want = keras.layers.LSTM(2, unroll=unroll).get_config()
    assert (config["unroll"], config["stateful"]) == (want["unroll"], want["stateful"])
    assert layers.LSTM.from_config(config).lowering == ("unrolled" if unroll else None)
