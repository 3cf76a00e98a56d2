"""Populations and DeepEnsemble honour compile's loss scaling.

Their sharding on 4 devices and across two processes is checked in tests/test_distribution.py
(subprocesses).
"""

import jax
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax import mixed_precision as mp
from dagjax.ensemble import DeepEnsemble
from dagjax.population import Population, fit_population, member

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 8)).astype("float32")
Y = np.arange(16) % 3
LOSS = "sparse_categorical_crossentropy"


@pytest.fixture
def global_policy():
    yield mp.set_global_policy
    mp.set_global_policy("float32")


def mlp():
    x = dj.Input((8,))
    h = layers.Dense(8, activation="relu")(x)
    return dj.Model(x, layers.Dense(3, activation="softmax", dtype="float32")(h))


def test_float16_members_train_with_a_loss_scaler_as_fit_does(global_policy):
    global_policy("mixed_float16")
    model = mlp()
    ps, _ = fit_population(Population(model, LOSS, "adam", size=2, seed=5), X, Y, batch_size=8)
    np.testing.assert_array_equal(mp.loss_scale(ps.train.opt_state), [2.0**15] * 2)  # one scale per member
    model.params, model.state = model.init(jax.random.key(5))
    model.compile("adam", LOSS, seed=5)  # fit wraps the optimizer the same way
    model.fit(X, Y, batch_size=8, verbose=0)
    for got, want in zip(jax.tree.leaves(member(ps.train, 0).params), jax.tree.leaves(model.params)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    plain = Population(model, LOSS, "adam", size=2, auto_scale_loss=False)
    assert mp.loss_scale(jax.eval_shape(plain.optimizer.init, model.params)) is None
    ensemble = DeepEnsemble(model, 2)
    ensemble.compile("adam", LOSS, auto_scale_loss=False)  # kept for the averaged model too
    averaged = ensemble.averaged()
    assert mp.loss_scale(jax.eval_shape(averaged.optimizer.init, averaged.params)) is None
    with pytest.raises(TypeError, match="auto_scale_loss='no'"):
        Population(model, LOSS, size=2, auto_scale_loss="no")
