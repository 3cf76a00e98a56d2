"""The pure training core: build_trainer, its train/eval/predict steps, and the train state pytree."""

import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.training import Trainer, TrainState, build_trainer


def three_output_model(regularized=False):
    reg = "l2" if regularized else None
    a = dj.Input((5,), name="a")
    b = dj.Input((3,), name="b")
    hidden = layers.Dense(6, "tanh", kernel_regularizer=reg, activity_regularizer=reg, name="hidden")
    h = layers.concatenate([hidden(a), b])
    age = layers.Dense(1, name="age")(h)
    income = layers.Dense(4, activation="softmax", name="income")(h)
    gender = layers.Dense(1, activation="sigmoid", name="gender")(h)
    return dj.Model([a, b], [age, income, gender])


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = [rng.normal(size=(n, 5)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")]
    y = [
        rng.normal(size=(n, 1)).astype("float32"),
        np.eye(4, dtype="float32")[rng.integers(0, 4, n)],
        rng.integers(0, 2, (n, 1)).astype("float32"),
    ]
    return x, y


LOSSES = ["mse", "categorical_crossentropy", "binary_crossentropy"]
# One model for the whole module: building and initialising models is what costs time here.
MODEL = three_output_model(regularized=True)
PARAMS, STATE = MODEL.init(jax.random.key(0))
X, Y = data()


def evaluate_and_predict(trainer, ts, batch):
    """Logs of one eval step and the predictions, in one compiled call."""
    fn = lambda ts, batch: (
        trainer.metric_results(trainer.eval_step(ts, batch)),
        trainer.predict_step(ts.params, ts.state, batch[0]),
    )
    return jax.jit(fn)(ts, batch)


def test_train_step_is_pure_and_jittable():
    trainer = build_trainer(MODEL, LOSSES, optax.sgd(0.1), metrics={"income": ["accuracy"]})
    assert isinstance(trainer, Trainer)
    ts = trainer.init_train_state(PARAMS, STATE)
    assert isinstance(ts, TrainState) and int(ts.step) == 0
    step = jax.jit(trainer.train_step)
    losses = []
    for i in range(6):
        ts, logs = step(trainer.reset_metrics(ts), (X, Y, None), jax.random.key(i))
        losses.append(float(logs["loss"]))
    assert int(ts.step) == 6
    assert losses[-1] < losses[0]
    assert trainer.metric_names == ("loss", "income_accuracy", "age_loss", "income_loss", "gender_loss")
    assert set(logs) == set(trainer.metric_names)


def test_padded_batch_trains_exactly_like_the_unpadded_one():
    """Rows with mask 0 change neither the loss (activity penalty included), the gradient nor the metrics."""
    trainer = build_trainer(MODEL, LOSSES, optax.sgd(0.5), metrics=[[], ["accuracy"], ["accuracy"]])
    x, y = [v[:5] for v in X], [v[:5] for v in Y]
    pad = lambda v: np.concatenate([v, v[:3] * 7.0])
    mask = np.array([1, 1, 1, 1, 1, 0, 0, 0], np.float32)
    step = jax.jit(trainer.train_step)
    ts = trainer.init_train_state(PARAMS, STATE)
    real, real_logs = step(ts, (x, y, None, np.ones(5, np.float32)), jax.random.key(0))
    ts = trainer.init_train_state(PARAMS, STATE)
    padded, padded_logs = step(ts, ([pad(v) for v in x], [pad(v) for v in y], None, mask), jax.random.key(0))
    for a, b in zip(jax.tree_util.tree_leaves(real.params), jax.tree_util.tree_leaves(padded.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for name in trainer.metric_names:
        np.testing.assert_allclose(real_logs[name], padded_logs[name], rtol=1e-6)


def test_total_loss_is_weighted_sum_plus_regularization_and_frozen_layers_stay_put():
    weights = {"age": 0.25, "income": 1.0, "gender": 10.0}
    losses = dict(zip(weights, LOSSES))
    trainer = build_trainer(MODEL, losses, optax.adamw(0.1), loss_weights=weights)
    ts = trainer.init_train_state(PARAMS, STATE)
    _, logs = jax.jit(trainer.train_step)(ts, (X, Y, None), jax.random.key(0))
    weighted = sum(w * float(logs[f"{name}_loss"]) for name, w in weights.items())
    kernel_penalty = 0.01 * float(np.sum(np.square(PARAMS["hidden"]["kernel"])))  # Keras's l2 default
    assert float(logs["loss"]) - weighted > kernel_penalty > 1e-4  # plus the activity penalty

    MODEL.get_layer("hidden").trainable = False
    try:
        frozen = build_trainer(MODEL, losses, optax.adamw(0.1), loss_weights=weights)
        new, frozen_logs = jax.jit(frozen.train_step)(
            frozen.init_train_state(PARAMS, STATE), (X, Y, None), jax.random.key(0)
        )
    finally:
        MODEL.get_layer("hidden").trainable = True
    # A frozen layer's weights are not regularized; its activity still is, as in Keras.
    np.testing.assert_allclose(float(frozen_logs["loss"]), float(logs["loss"]) - kernel_penalty, rtol=1e-6)
    np.testing.assert_array_equal(new.params["hidden"]["kernel"], PARAMS["hidden"]["kernel"])
    assert not np.allclose(new.params["age"]["kernel"], PARAMS["age"]["kernel"])


def test_sample_weight_follows_keras_sum_over_batch_size():
    trainer = build_trainer(MODEL, {"age": "mse"}, "sgd")
    sw = np.array([1.0, 0.0, 2.0, 1.0, 0.5, 0.0, 3.0, 1.0], np.float32)
    ts = trainer.init_train_state(PARAMS, STATE)
    logs, preds = evaluate_and_predict(trainer, ts, (X, Y, sw))
    penalties, _ = evaluate_and_predict(trainer, ts, (X, Y, np.zeros_like(sw)))  # regularizers only
    errors = (np.asarray(preds[0]) - Y[0])[:, 0] ** 2
    np.testing.assert_allclose(
        float(logs["loss"]), np.sum(sw * errors) / 8 + float(penalties["loss"]), rtol=1e-5
    )


def test_accuracy_follows_the_target_shape_as_keras():
    """Integer labels make "accuracy" sparse categorical accuracy, as Keras decides it."""
    trainer = build_trainer(
        MODEL,
        {"income": "sparse_categorical_crossentropy"},
        "sgd",
        metrics={"income": ["accuracy"]},
        target_shapes=[(None, 1), (None,), (None, 1)],
    )
    ts = trainer.init_train_state(PARAMS, STATE)
    _, preds = evaluate_and_predict(trainer, ts, (X, [None, np.zeros(8, np.int32), None], None))
    labels = np.argmax(np.asarray(preds[1]), -1).astype(np.int32)
    logs, _ = evaluate_and_predict(trainer, ts, (X, [None, labels, None], None))
    assert float(logs["income_accuracy"]) == 1.0


def test_dropout_draws_from_the_step_rng():
    x = dj.Input((16,))
    model = dj.Model(x, layers.Dense(1)(layers.Dropout(0.5)(x)))
    trainer = build_trainer(model, "mse", optax.sgd(0.1))
    ts = trainer.init_train_state(*model.init(jax.random.key(0)))
    batch = (np.ones((4, 16), np.float32), np.zeros((4, 1), np.float32))
    step = jax.jit(trainer.train_step)
    kernel = lambda key: np.asarray(step(ts, batch, key)[0].params["dense"]["kernel"])
    np.testing.assert_array_equal(kernel(jax.random.key(1)), kernel(jax.random.key(1)))
    assert not np.array_equal(kernel(jax.random.key(1)), kernel(jax.random.key(2)))


def test_train_state_vmaps_over_an_ensemble():
    """The state is a plain pytree: vmap trains several differently initialised models at once."""
    trainer = build_trainer(MODEL, "mse", optax.sgd(0.1))
    scaled = lambda s: trainer.init_train_state(jax.tree_util.tree_map(lambda p: p * s, PARAMS), STATE)
    states = jax.jit(jax.vmap(scaled))(np.array([1.0, 0.5, 2.0], np.float32))
    keys = jax.random.split(jax.random.key(0), 3)
    new, logs = jax.jit(jax.vmap(trainer.train_step, in_axes=(0, None, 0)))(states, (X, Y, None), keys)
    assert new.params["age"]["kernel"].shape == (3, 9, 1)
    assert logs["loss"].shape == (3,) and len(set(np.asarray(logs["loss"]).tolist())) == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"loss": {"agee": "mse"}}, "unknown outputs ['agee']"),
        ({"loss": ["mse", "mse"]}, "list of 2 entries"),
        ({"loss": "mse", "loss_weights": [1.0]}, "loss_weights"),
        ({"loss": "mse", "metrics": {"incme": ["mae"]}}, "unknown outputs ['incme']"),
        ({"loss": "msee"}, "Unknown loss 'msee'"),
    ],
)
def test_bad_compile_arguments_name_the_outputs(kwargs, message):
    with pytest.raises(ValueError) as err:
        build_trainer(MODEL, optimizer="sgd", **kwargs)
    assert message in str(err.value)
    if "outputs" in message:
        assert "['age', 'income', 'gender']" in str(err.value)


@pytest.mark.parametrize(
    "targets, message",
    [
        (lambda y: y[:2], "are a list of 2; the model has 3 outputs ['age', 'income', 'gender']"),
        (lambda y: y + [y[0]], "are a list of 4"),
        (lambda y: y[0], "are one array"),
        (lambda y: {"age": y[0], "incme": y[1], "gender": y[2]}, "unknown outputs ['incme']"),
    ],
)
def test_targets_that_do_not_match_the_outputs_are_named(targets, message):
    trainer = build_trainer(MODEL, LOSSES, optax.sgd(0.1))
    ts = trainer.init_train_state(PARAMS, STATE)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        trainer.train_step(ts, (X, targets(Y), None), jax.random.key(0))


def test_train_state_checkpoints_as_plain_arrays_and_training_resumes_bitwise(tmp_path):
    """Every leaf of the state is an array numpy can save: a round trip through .npz resumes exactly."""
    trainer = build_trainer(MODEL, LOSSES, optax.adam(0.01), metrics={"income": ["accuracy"]})
    step = jax.jit(trainer.train_step)
    ts, _ = step(trainer.init_train_state(PARAMS, STATE), (X, Y, None), jax.random.key(0))
    leaves, treedef = jax.tree_util.tree_flatten(ts)
    np.savez(tmp_path / "state.npz", *[np.asarray(leaf) for leaf in leaves])
    with np.load(tmp_path / "state.npz") as stored:
        restored = jax.tree_util.tree_unflatten(treedef, [stored[f"arr_{i}"] for i in range(len(leaves))])
    batch = (X, Y, None)
    expected, expected_logs = step(ts, batch, jax.random.key(1))
    resumed, resumed_logs = step(restored, batch, jax.random.key(1))
    leaves = jax.tree_util.tree_leaves
    for a, b in zip(leaves((expected, expected_logs)), leaves((resumed, resumed_logs))):
        np.testing.assert_array_equal(a, b)


SHARDED_STEP = """
import jax, numpy as np, optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import dagjax as dj
from dagjax import layers
from dagjax.training import build_trainer

x_in = dj.Input((5,), name="x")
model = dj.Model(x_in, layers.Dense(2, name="out")(layers.Dense(8, "tanh", name="hidden")(x_in)))
trainer = build_trainer(model, "mse", optax.adam(0.01))
rng = np.random.default_rng(0)
batch = (rng.normal(size=(16, 5)).astype("float32"), rng.normal(size=(16, 2)).astype("float32"), None)
ts = trainer.init_train_state(*model.init(jax.random.key(0)))
step = jax.jit(trainer.train_step)
single, single_logs = step(ts, batch, jax.random.key(1))

mesh = Mesh(np.array(jax.devices()), ("data",))
replicated = jax.device_put(ts, NamedSharding(mesh, P()))
rows = jax.device_put(batch[:2], NamedSharding(mesh, P("data")))
sharded, sharded_logs = step(replicated, (*rows, None), jax.random.key(1))
assert len(jax.devices()) == 2 and len(rows[0].sharding.device_set) == 2
assert sharded.params["hidden"]["kernel"].sharding.is_fully_replicated
leaves = jax.tree_util.tree_leaves
for a, b in zip(leaves((single, single_logs)), leaves((sharded, sharded_logs))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("ok")
"""


def test_train_step_runs_data_parallel_on_a_sharded_batch():
    """Replicated state, batch split over two devices: the same step, the same numbers as on one device."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-c", SHARDED_STEP]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


@pytest.mark.parametrize("steps_per_execution", [1, "auto"])
def test_the_pure_step_reproduces_fit_bit_for_bit(steps_per_execution):
    """fit's step is build_trainer's train_step with step_rng(seed, step): Dropout included, fused or not."""
    import dagjax as dj
    from dagjax import layers
    from dagjax.training import step_rng

    def build():
        x = dj.Input((5,), name="x")
        h = layers.Dropout(0.2)(layers.Dense(8, "relu", name="hidden")(x))
        return dj.Model(x, layers.Dense(2, name="out")(h))

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype("float32"), rng.normal(size=(64, 2)).astype("float32")
    model = build()
    model.compile(optax.adam(1e-2), "mse", steps_per_execution=steps_per_execution, seed=3)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)

    pure = build()
    trainer = build_trainer(pure, "mse", optax.adam(1e-2))
    ts, step = trainer.init_train_state(*pure.init()), jax.jit(trainer.train_step)
    for _ in range(2):
        for k in range(0, 64, 16):
            ts, _ = step(ts, (x[k : k + 16], y[k : k + 16]), step_rng(3, ts.step))
    fitted = jax.tree.leaves(model.weights_view()[0])
    for a, b in zip(fitted, jax.tree.leaves(ts.params), strict=True):
        np.testing.assert_array_equal(a, b)
