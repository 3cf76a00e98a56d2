"""load_model gives back a compiled model, as Keras 3 does: optimizer, losses, metrics, state and step."""

import inspect

import jax
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.io import CheckpointError, read_archive, write_archive
from dagjax.training.core import compile_arguments, compile_config
from dagjax.training.objectives import _losses, _metrics
from dagjax.training.optimizers._keras import OPTIMIZERS


def two_headed_model():
    x = dj.Input((6,), name="features")
    h = layers.Dense(8, activation="relu")(x)
    h = layers.BatchNormalization()(layers.Dropout(0.25)(h))
    score = layers.Dense(1, name="score")(h)
    label = layers.Dense(3, activation="softmax", name="label")(h)
    return dj.Model(x, {"score": score, "label": label})


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype("float32")
    return x, {"score": rng.normal(size=(40, 1)).astype("float32"), "label": rng.integers(0, 3, size=(40,))}


def clipped_error(y_true, y_pred):
    """A user's loss function: saved by name, given back through custom_objects."""
    return jax.numpy.mean(jax.numpy.clip(y_pred - y_true, -1.0, 1.0) ** 2, axis=-1)


def assert_same_training(a, b):
    assert int(a.fit_session.iterations) == int(b.fit_session.iterations)
    for tree in ("params", "state", "opt_state"):
        for u, v in zip(jax.tree.leaves(getattr(a, tree)), jax.tree.leaves(getattr(b, tree)), strict=True):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_load_model_then_fit_continues_the_saved_run_exactly(tmp_path):
    x, y = data()
    fit = dict(batch_size=8, epochs=2, verbose=0)
    model = two_headed_model()
    model.compile(
        optimizer=dj.optimizers.Adam(learning_rate=3e-3, clipnorm=1.0),
        loss={"score": clipped_error, "label": "sparse_categorical_crossentropy"},
        loss_weights={"score": 0.5, "label": 2.0},
        metrics={"score": ["mae", dj.metrics.MeanSquaredError(name="sq")], "label": ["accuracy"]},
        seed=7,
    )
    model.fit(x, y, **fit)
    model.optimizer.learning_rate = 1e-3  # set between fits: the rate lives in the saved optimizer state
    model.save(tmp_path / "run.dj")
    expected = model.fit(x, y, **fit).history

    resumed = dj.models.load_model(tmp_path / "run.dj", custom_objects={"clipped_error": clipped_error})
    assert resumed.compiled
    np.testing.assert_allclose(float(resumed.optimizer.learning_rate), 1e-3)
    history = resumed.fit(x, y, **fit).history
    assert history == expected  # every loss and metric, logged under the same names
    assert_same_training(model, resumed)


def test_a_model_compiled_but_not_trained_loads_compiled_with_a_fresh_optimizer(tmp_path):
    model = two_headed_model()
    model.compile(optimizer="sgd", loss=["mse", "sparse_categorical_crossentropy"])
    model.save(tmp_path / "m.dj")
    loaded = dj.load_model(tmp_path / "m.dj")
    assert loaded.compiled and int(loaded.fit_session.iterations) == 0
    assert loaded.fit_session.compile_config() == model.fit_session.compile_config()
    assert not dj.load_model(tmp_path / "m.dj", compile=False).compiled


@pytest.mark.parametrize(
    "optimizer, loss, why",
    [
        (optax.adam(1e-3), "mse", "optax transformation"),
        ("adam", lambda y_true, y_pred: (y_true - y_pred) ** 2, "lambda"),
        (dj.optimizers.SGD(learning_rate=optax.linear_schedule(0.1, 0.01, 10)), "mse", "schedule"),
    ],
    ids=["raw-optax", "lambda-loss", "schedule"],
)
def test_what_a_file_cannot_hold_loads_uncompiled_with_a_warning_that_says_how_to_recompile(
    tmp_path, optimizer, loss, why
):
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(1)(x))
    model.compile(optimizer=optimizer, loss=loss)
    model.fit(np.ones((8, 3), "float32"), np.ones((8, 1), "float32"), verbose=0)
    model.save(tmp_path / "m.dj")

    with pytest.warns(UserWarning, match=rf"loads uncompiled.*{why}.*model.compile.*load_weights"):
        loaded = dj.load_model(tmp_path / "m.dj")
    assert not loaded.compiled
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
    loaded.compile(optimizer=optimizer, loss=loss)
    loaded.load_weights(tmp_path / "m.dj")  # the optimizer state and step come back this way
    assert_same_training(model, loaded)


def test_a_custom_loss_needs_custom_objects_to_compile_and_loads_uncompiled_without_compile(tmp_path):
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(1)(x))
    model.compile(optimizer="adam", loss=clipped_error)
    model.save(tmp_path / "m.dj")
    with pytest.raises(CheckpointError, match=r"clipped_error.*custom_objects.*compile=False"):
        dj.load_model(tmp_path / "m.dj")
    assert not dj.load_model(tmp_path / "m.dj", compile=False).compiled
    loaded = dj.load_model(tmp_path / "m.dj", custom_objects={"clipped_error": clipped_error})
    assert loaded.fit_session.compile_arguments["loss"] is clipped_error


def rewrite_compile_entry(path, entry):
    manifest, arrays = read_archive(path)
    for key in ("format", "version", "arrays"):
        manifest.pop(key)
    write_archive(path, {**manifest, "compile": entry}, arrays.items())


@pytest.mark.parametrize(
    "entry, named",
    [
        ({"config": {"optimizer": {"class_name": "os.system", "config": {}}}}, "compile config has the keys"),
        ("not a dict", "compile config has the keys"),
        ({"config": None}, "compile config has the keys"),
    ],
)
def test_a_damaged_compile_config_is_a_checkpoint_error(tmp_path, entry, named):
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(1)(x))
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "m.dj")
    rewrite_compile_entry(tmp_path / "m.dj", entry)
    with pytest.raises(CheckpointError, match=named):
        dj.load_model(tmp_path / "m.dj")


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("optimizer", {"class_name": "os.system", "config": {}}, "Unknown optimizer"),
        ("optimizer", {"class_name": "Adam", "config": {"learning_rate": 0.1, "code": "x"}}, "code"),
        ("loss", {"object": {"class_name": "Popen", "config": {}}}, "Unknown loss class 'Popen'"),
        ("loss", {"function": "system"}, "Unknown loss function 'system'"),
        ("metrics", [{"custom_object": {"class_name": "Evil", "config": {}}}], "custom_objects"),
    ],
)
def test_unknown_names_in_a_compile_config_fail_before_anything_is_made(tmp_path, key, value, named):
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(1)(x))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.save(tmp_path / "m.dj")
    config = {**model.fit_session.compile_config(), key: value}
    rewrite_compile_entry(tmp_path / "m.dj", {"config": config})
    with pytest.raises(CheckpointError, match=named):
        dj.load_model(tmp_path / "m.dj")


# ------------------------------------------------------------------ each object says how it was made
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_keras_optimizer_round_trips_through_its_config(name):
    constructor = OPTIMIZERS[name]
    optimizer = constructor(learning_rate=0.25, clipvalue=0.5)
    config = compile_config(_arguments(optimizer))["optimizer"]
    assert config["class_name"] == constructor.__name__
    assert config["config"]["learning_rate"] == 0.25 and config["config"]["clipvalue"] == 0.5
    assert set(config["config"]) == set(inspect.signature(constructor).parameters)
    again = compile_arguments(compile_config(_arguments(optimizer)))["optimizer"]
    params = {"w": np.linspace(-1, 1, 5, dtype="float32")}
    grads = {"w": np.linspace(2, -2, 5, dtype="float32")}
    first, _ = optimizer.update(grads, optimizer.init(params), params)
    second, _ = again.update(grads, again.init(params), params)
    np.testing.assert_array_equal(np.asarray(first["w"]), np.asarray(second["w"]))


def _arguments(optimizer=None, **kwargs):
    base = dict(optimizer=optimizer or dj.optimizers.get("adam"), loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, steps_per_execution="auto", seed=0)
    return {**base, **kwargs}


METRICS = [
    dj.metrics.BinaryAccuracy(threshold=0.25, name="ba"),
    dj.metrics.TopKCategoricalAccuracy(k=2),
    dj.metrics.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
    dj.metrics.CosineSimilarity(axis=-1),
    dj.metrics.AUC(num_thresholds=17, curve="PR", from_logits=True),
    dj.metrics.AUC(thresholds=[0.2, 0.6]),
    dj.metrics.Precision(thresholds=0.3, top_k=1),
    dj.metrics.Recall(class_id=1),
    dj.metrics.MeanMetricWrapper(_metrics.binary_accuracy, name="bacc", threshold=0.7),
]


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.name)
def test_metrics_round_trip_with_their_arguments(metric):
    (again,) = compile_arguments(compile_config(_arguments(metrics=[metric])))["metrics"]
    assert type(again) is type(metric) and again.get_config() == metric.get_config()
    rng = np.random.default_rng(1)
    y_true = (rng.random((6, 3)) > 0.5).astype("float32")
    y_pred = rng.random((6, 3)).astype("float32")
    results = [float(m.result(m.update(m.init(), y_true, y_pred))) for m in (metric, again)]
    assert results[0] == results[1]


@pytest.mark.parametrize("loss", [_losses.Huber(delta=0.3), _losses.SparseCategoricalCrossentropy(
    from_logits=True, ignore_class=2), _losses.LossFunctionWrapper(_losses.get("mae").fn, name="l1")])
def test_losses_round_trip_with_their_arguments(loss):
    (again,) = compile_arguments(compile_config(_arguments(loss=[loss])))["loss"]
    assert type(again) is type(loss) and again.get_config() == loss.get_config()


def test_an_optimizer_keeping_more_arguments_in_its_state_loads_with_that_state(tmp_path):
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(1)(x))
    model.compile(optimizer=dj.optimizers.Adam(1e-2).injecting("beta_1", "epsilon"), loss="mse")
    model.fit(np.ones((8, 3), "float32"), np.ones((8, 1), "float32"), verbose=0)
    model.save(tmp_path / "m.dj")
    loaded = dj.load_model(tmp_path / "m.dj")
    assert loaded.optimizer is not None and loaded.fit_session.compile_arguments["optimizer"].injected == (
        "beta_1", "epsilon")
    assert_same_training(model, loaded)
