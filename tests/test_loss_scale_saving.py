"""A float16 model saved and loaded trains the same way: compile's auto_scale_loss, the model's own
policy and the loss scaler's state all come back (dagjax files; Keras's compile config has no such field)."""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax import mixed_precision as mp
from dagjax.training.optimizers import LossScaleState

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 8)).astype("float32")
Y = np.arange(16) % 3


@pytest.fixture
def global_policy():
    yield mp.set_global_policy
    mp.set_global_policy("float32")


def mlp(dtype=None):
    x = dj.Input((8,))
    h = layers.Dense(8, activation="relu", name="hidden", dtype=dtype)(x)
    return dj.Model(x, layers.Dense(3, activation="softmax", name="probs", dtype="float32")(h))


def scaler(model):
    """``(scale, finite steps since it moved)`` of the model's loss scaler, or None without one."""
    is_scaler = lambda node: isinstance(node, LossScaleState)
    state = [s for s in jax.tree.leaves(model.fit_session.opt_state, is_leaf=is_scaler) if is_scaler(s)]
    return (float(state[0].scale), int(state[0].growth_count)) if state else None


def test_the_loss_scaler_and_its_state_survive_a_round_trip(global_policy, tmp_path):
    global_policy("mixed_float16")
    model = mlp()
    optimizer = mp.LossScaleOptimizer("sgd", initial_scale=4.0, dynamic_growth_steps=3)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)  # 4 finite steps: doubled once, then 1
    assert scaler(model) == (8.0, 1)
    model.save(tmp_path / "m.dj")
    global_policy("float32")
    loaded = dj.load_model(tmp_path / "m.dj")
    assert scaler(loaded) == (8.0, 1) and int(loaded.fit_session.iterations) == 4
    for m in (model, loaded):
        m.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert scaler(loaded) == scaler(model) == (16.0, 0)  # the loaded count went on: doubled at step 6
    for a, b in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(model.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_auto_scale_loss_and_the_model_s_own_policy_are_saved(global_policy, tmp_path):
    global_policy("mixed_float16")
    # Every layer float32, the model itself mixed_float16: compile scales the loss (as Keras does).
    own = mlp(dtype="float32")
    own.compile("sgd", "mse")
    plain = mlp()
    plain.compile("sgd", "mse", auto_scale_loss=False)
    assert scaler(own) == (2.0**15, 0) and scaler(plain) is None
    own.save(tmp_path / "own.dj")
    plain.save(tmp_path / "plain.dj")
    global_policy("float32")
    own_loaded, plain_loaded = dj.load_model(tmp_path / "own.dj"), dj.load_model(tmp_path / "plain.dj")
    assert own_loaded.dtype_policy.name == "mixed_float16" and scaler(own_loaded) == (2.0**15, 0)
    assert plain_loaded.get_layer("hidden").compute_dtype == "float16" and scaler(plain_loaded) is None
    # Keras 3 records neither in its compile config (so .keras files have no field for them).
    theirs = keras.Model(*(lambda x: (x, keras.layers.Dense(2)(x)))(keras.Input((3,))))
    theirs.compile("sgd", "mse", auto_scale_loss=False)
    assert "auto_scale_loss" not in theirs.get_compile_config() and "dtype" not in theirs.get_config()
