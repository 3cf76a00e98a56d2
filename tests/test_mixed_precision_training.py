"""Training under mixed precision: dtypes layer by layer, bfloat16 on digits, float16 dynamic loss scaling."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits

import dagjax as dj
from dagjax import layers
from dagjax import mixed_precision as mp
from dagjax.optimizers import KerasOptimizerState
from dagjax.training.core import build_trainer
from dagjax.training.optimizers._keras import deserialize, serialize


@pytest.fixture
def global_policy():
    """Set dagjax's global policy for one test; float32 again afterwards, whatever happens."""
    yield mp.set_global_policy
    mp.set_global_policy("float32")


def mlp(hidden=32, inputs=64, classes=10, last_dtype=None):
    x = dj.Input((inputs,))
    h = layers.Dense(hidden, activation="relu", name="hidden")(x)
    h = layers.BatchNormalization(name="bn")(h)
    return dj.Model(x, layers.Dense(classes, activation="softmax", name="probs", dtype=last_dtype)(h))


def leaf_dtypes(tree):
    return {np.dtype(leaf.dtype).name for leaf in jax.tree_util.tree_leaves(tree) if hasattr(leaf, "dtype")}


# ------------------------------------------------------------------ dtypes, layer by layer
@pytest.mark.parametrize("policy, low", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")])
def test_params_state_and_gradients_are_float32_and_activations_and_matmuls_low(global_policy, policy, low):
    global_policy(policy)
    model = mlp(last_dtype="float32")
    # Every layer's activation, from a model whose outputs are all of them.
    probe = dj.Model(model.input, [layer.output for layer in model.layers[1:]])
    x = np.random.default_rng(0).normal(size=(4, 64)).astype("float32")

    def loss(params):
        return -jnp.mean(jnp.log(model.apply(params, model.state, x, training=True)[0][:, 0]))

    def activations_and_grads(params):
        return probe.apply(params, model.state, x, training=True)[0], jax.grad(loss)(params)

    activations, grads = jax.jit(activations_and_grads)(model.params)
    assert [a.dtype.name for a in activations] == [low, low, "float32"]
    assert leaf_dtypes(model.params) == leaf_dtypes(model.state) == {"float32"}
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(model.params)
    assert leaf_dtypes(grads) == {"float32"}
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    # The matrix products run in the compute dtype: the first in low precision, the float32 last layer's not.
    dots = [e for e in jax.make_jaxpr(loss)(model.params).jaxpr.eqns if e.primitive.name == "dot_general"]
    assert [{v.aval.dtype.name for v in e.invars} for e in dots] == [{low}, {"float32"}]
    trainer = build_trainer(model, "sparse_categorical_crossentropy", "adam")
    opt_state = jax.eval_shape(trainer.init_train_state, model.params, model.state).opt_state
    assert leaf_dtypes(opt_state) <= {"float32", "int32"}  # the optimizer state follows the float32 weights


# ------------------------------------------------------------------ bfloat16 learns as float32 does
# Digits, 10 epochs of fit's own train step on the first 80% (1437 images), accuracy on the last 20%
# (other writers): float32 reaches 0.878 here and bfloat16 (8 mantissa bits in every matmul) 0.875;
# bfloat16 must come within MARGIN of float32, which must clear FLOOR (chance is 0.1).
MARGIN, FLOOR = 0.03, 0.8


def digits_accuracy(policy):
    images, labels = load_digits(return_X_y=True)
    x, n = (images / 16.0).astype("float32"), int(0.8 * len(images))
    mp.set_global_policy(policy)
    model = mlp(hidden=64)
    mp.set_global_policy("float32")
    trainer = build_trainer(model, "sparse_categorical_crossentropy", "adam")
    ts, step = trainer.init_train_state(model.params, model.state), jax.jit(trainer.train_step)
    rng = np.random.default_rng(0)
    for _ in range(10):
        order = rng.permutation(n)
        for start in range(0, n - 63, 64):
            batch = order[start : start + 64]
            ts, _ = step(ts, (x[batch], labels[batch]), None)
    assert leaf_dtypes(ts.params) == {"float32"}
    probs = jax.jit(trainer.predict_step)(ts.params, ts.state, x[n:])
    return float(np.mean(np.argmax(np.asarray(probs, "float32"), axis=-1) == labels[n:])), model, ts


def test_bfloat16_training_on_digits_reaches_the_float32_accuracy(global_policy):
    full, _, _ = digits_accuracy("float32")
    mixed, model, ts = digits_accuracy("mixed_bfloat16")
    assert model.get_layer("hidden").compute_dtype == "bfloat16" and model.output.dtype == "bfloat16"
    assert mp.loss_scale(ts.opt_state) is None  # bfloat16 has float32's range: no loss scaling
    assert full > FLOOR
    assert mixed >= full - MARGIN, (mixed, full)


# ------------------------------------------------------------------ float16: dynamic loss scaling
def float16_trainer(initial_scale, growth_steps=3):
    x = dj.Input((4,))
    model = dj.Model(x, layers.Dense(1, name="out")(layers.Dense(8, activation="tanh", name="h")(x)))
    trainer = build_trainer(model, "mse", mp.LossScaleOptimizer("sgd", initial_scale, growth_steps))
    return model, trainer, jax.jit(trainer.train_step)


def inner_iterations(opt_state):
    """The steps the wrapped optimizer took (skipped ones not counted)."""
    is_state = lambda node: isinstance(node, KerasOptimizerState)  # noqa: E731
    (state,) = [s for s in jax.tree_util.tree_leaves(opt_state, is_leaf=is_state) if is_state(s)]
    return int(state.iterations)


def test_float16_loss_scaling_skips_overflowing_steps_halves_the_scale_and_recovers(global_policy):
    global_policy("mixed_float16")
    model, trainer, step = float16_trainer(initial_scale=2.0**24)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    batch = (x, x.sum(axis=1, keepdims=True))
    ts = trainer.init_train_state(model.params, model.state)

    def run(batch):
        nonlocal ts
        before, scale = ts.params, float(mp.loss_scale(ts.opt_state))
        ts, logs = step(ts, batch, None)
        pairs = zip(jax.tree.leaves(before), jax.tree.leaves(ts.params))
        same = all(bool(jnp.array_equal(a, b)) for a, b in pairs)
        return scale, float(mp.loss_scale(ts.opt_state)), same

    # A scale of 2**24 overflows float16 in the backward pass: halved, step skipped, until it fits.
    scale, after, skipped = run(batch)
    assert (scale, after, skipped) == (2.0**24, 2.0**23, True) and inner_iterations(ts.opt_state) == 0
    while skipped:
        scale, after, skipped = run(batch)
    assert after == scale < 2.0**24 and inner_iterations(ts.opt_state) == 1
    # Then dynamic_growth_steps (3) finite steps double it.
    assert [run(batch)[1:] for _ in range(2)] == [(scale, False), (2 * scale, False)]
    # An input that overflows float16 (1e6 > 65504) in the forward pass: that step alone is skipped.
    trained = inner_iterations(ts.opt_state)
    assert run((np.full_like(x, 1e6), batch[1])) == (2 * scale, scale, True)
    assert inner_iterations(ts.opt_state) == trained
    mean_loss = lambda t: trainer.eval_step(trainer.reset_metrics(t), batch).metrics["loss"]["total"][0]  # noqa: E731
    evaluate = jax.jit(mean_loss)
    first = float(evaluate(ts))
    # Training goes on; the scale grows back to 2 * scale every 3 steps, where it overflowed before.
    results = [run(batch) for _ in range(20)]
    assert all(before >= 2 * scale for before, _, skipped in results if skipped)
    assert sum(not skipped for _, _, skipped in results) >= 14
    last = float(evaluate(ts))
    assert np.isfinite(last) and last < first


def test_the_loss_scale_moves_as_keras_s_loss_scale_optimizer_does(global_policy):
    """The same gradients, some of them infinite, through both optimizers: the same scales and weights."""
    grads = [np.array([8.0, -4.0]), np.array([np.inf, 1.0]), np.array([2.0, 2.0]), np.array([1.0, np.nan]),
             np.array([4.0, 4.0]), np.array([-2.0, 6.0]), np.array([1.0, 1.0])]  # fmt: skip
    theirs = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.1), initial_scale=4.0, dynamic_growth_steps=2
    )
    variable = keras.Variable(np.array([1.0, 2.0], "float32"))
    theirs.build([variable])
    scale_index = [id(v) for v in theirs.variables].index(id(theirs.dynamic_scale))
    their_state, (their_w,) = [v.value for v in theirs.variables], [variable.value]
    ours = mp.LossScaleOptimizer(dj.optimizers.SGD(0.1), initial_scale=4.0, dynamic_growth_steps=2)
    params = {"w": jnp.array([1.0, 2.0])}
    state = ours.init(params)
    their_step = jax.jit(theirs.stateless_apply)
    for g in grads:
        (their_w,), their_state = their_step(their_state, [jnp.asarray(g, "float32")], [their_w])
        updates, state = ours.update({"w": jnp.asarray(g, jnp.float32)}, state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
        assert float(mp.loss_scale(state)) == float(their_state[scale_index])
        np.testing.assert_allclose(params["w"], their_w, rtol=1e-6)


def test_compile_scales_the_loss_of_a_float16_model_only(global_policy, tmp_path):
    x = np.random.default_rng(0).normal(size=(32, 64)).astype("float32")
    y = np.arange(32) % 10
    global_policy("mixed_float16")
    model = mlp(last_dtype="float32")  # float16 probabilities would overflow the scaled loss's gradient
    model.compile("adam", "sparse_categorical_crossentropy", seed=0)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    assert np.isfinite(history["loss"]).all() and float(mp.loss_scale(model.fit_session.opt_state)) == 2.0**15
    model.optimizer.learning_rate = 1e-4  # the inner optimizer's rate, read and set through the wrapper
    assert np.isclose(float(model.optimizer.learning_rate), 1e-4)
    model.save(tmp_path / "m.dj")  # the compile config records the optimizer given, as Keras's
    global_policy("float32")
    loaded = dj.load_model(tmp_path / "m.dj")
    assert loaded.get_layer("hidden").compute_dtype == "float16"
    assert mp.loss_scale(loaded.fit_session.opt_state) is not None  # its float16 layers scale again
    model.compile("adam", "sparse_categorical_crossentropy", auto_scale_loss=False)
    assert mp.loss_scale(model.fit_session.opt_state) is None
    bf16 = mlp(last_dtype="mixed_bfloat16")
    bf16.compile("adam", "sparse_categorical_crossentropy")
    assert mp.loss_scale(bf16.fit_session.opt_state) is None
    explicit = mp.LossScaleOptimizer("adam", initial_scale=2.0**8, dynamic_growth_steps=10)
    again = deserialize(serialize(explicit))
    assert serialize(again) == serialize(explicit) and type(again) is mp.LossScaleOptimizer
    assert serialize(again)["config"]["inner_optimizer"]["class_name"] == "Adam"
    keras_config = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()).get_config()
    assert set(explicit.get_config()) == set(keras_config)
