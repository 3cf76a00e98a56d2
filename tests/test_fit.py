"""The Keras façade: compile / fit / evaluate / predict, callbacks, the progress bar, bad input."""

import jax
import keras
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import callbacks, layers, optimizers
from dagjax.training.fit import _perf, _sources
from dagjax.training.fit._loop import Loop

RNG = np.random.default_rng(0)
N = 90  # 72 to train (4 full batches of 16 and one of 8), 18 to validate (16 + 2)
XA = RNG.normal(size=(N, 5)).astype("float32")
XB = RNG.normal(size=(N, 3)).astype("float32")
AGE = RNG.normal(size=(N, 1)).astype("float32")
INCOME = np.eye(4, dtype="float32")[RNG.integers(0, 4, N)]
GENDER = RNG.integers(0, 2, (N, 1)).astype("float32")
Y = [AGE, INCOME, GENDER]
LOSSES = ["mse", "categorical_crossentropy", "binary_crossentropy"]


def three_output(lib, dropout=0.0):
    """The same two-input / three-output graph in dagjax or Keras."""
    a = lib.Input((5,), name="a")
    b = lib.Input((3,), name="b")
    h = lib.layers.Dense(6, activation="tanh", name="hidden")(a)
    if dropout:
        h = lib.layers.Dropout(dropout)(h)
    h = lib.layers.concatenate([h, b])
    age = lib.layers.Dense(1, name="age")(h)
    income = lib.layers.Dense(4, activation="softmax", name="income")(h)
    gender = lib.layers.Dense(1, activation="sigmoid", name="gender")(h)
    return lib.Model([a, b], [age, income, gender])


def small(units=2):
    x = dj.Input((5,), name="x")
    return dj.Model(x, layers.Dense(units, name="out")(x))


def test_fit_and_evaluate_match_keras_on_three_outputs():
    kmodel, model = three_output(keras), three_output(dj)
    model.set_weights(kmodel.get_weights())
    args = dict(
        loss=LOSSES, loss_weights=[0.5, 1.0, 2.0], metrics={"income": ["accuracy"], "gender": ["acc", "mae"]}
    )
    kmodel.compile(keras.optimizers.SGD(0.1), **args)
    model.compile(optimizers.SGD(0.1), **args)
    fit = dict(epochs=2, batch_size=16, shuffle=False, validation_split=0.2, verbose=0)
    expected = kmodel.fit([XA, XB], Y, **fit).history
    got = model.fit([XA, XB], Y, **fit).history
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=2e-5, atol=1e-6, err_msg=key)
    for k, d in zip(kmodel.get_weights(), model.get_weights()):
        np.testing.assert_allclose(d, k, rtol=1e-5, atol=1e-6)
    held_out = dict(x=[XA[72:], XB[72:]], y=[v[72:] for v in Y], batch_size=16, verbose=0)  # as validated
    np.testing.assert_allclose(model.evaluate(**held_out), kmodel.evaluate(**held_out), rtol=2e-5)
    expected = kmodel.evaluate(**held_out, return_dict=True)
    assert model.evaluate(**held_out, return_dict=True) == pytest.approx(expected, rel=2e-5)
    assert list(model.evaluate(**held_out, return_dict=True)) == list(expected)


def test_single_output_logs_weights_and_class_weights_match_keras():
    def build(lib):
        x = lib.Input((5,))
        return lib.Model(x, lib.layers.Dense(3, activation="softmax")(x))

    labels = RNG.integers(0, 3, 40)
    weights = RNG.uniform(0.0, 2.0, 40).astype("float32")
    kmodel, model = build(keras), build(dj)
    model.set_weights(kmodel.get_weights())
    args = dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"], weighted_metrics=["accuracy"])
    kmodel.compile("adam", **args)
    model.compile("adam", **args)
    fit = dict(epochs=2, batch_size=16, shuffle=False, verbose=0)
    expected = kmodel.fit(XA[:40], labels, sample_weight=weights, **fit).history
    got = model.fit(XA[:40], labels, sample_weight=weights, **fit).history
    assert list(got) == list(expected) == ["accuracy", "loss", "weighted_accuracy"]
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=2e-5, err_msg=key)
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}
    expected = kmodel.fit(XA[:40], labels, class_weight=class_weight, **fit).history
    got = model.fit(XA[:40], labels, class_weight=class_weight, **fit).history
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=2e-5)
    for k, d in zip(kmodel.get_weights(), model.get_weights()):
        np.testing.assert_allclose(d, k, rtol=1e-4, atol=1e-6)


def test_same_seed_same_params_bitwise_whether_fed_by_list_or_dict():
    histories, params = [], []
    for feed in ("list", "dict"):
        model = three_output(dj, dropout=0.3)
        model.compile("adam", LOSSES, seed=7)
        x = [XA, XB] if feed == "list" else {"b": XB, "a": XA}
        y = Y if feed == "list" else dict(zip(["age", "income", "gender"], Y))
        histories.append(model.fit(x, y, epochs=2, batch_size=16, verbose=0).history)
        params.append(model.get_weights())
    assert histories[0] == histories[1]
    for a, b in zip(*params):
        np.testing.assert_array_equal(a, b)


def test_loss_as_list_dict_and_weights_report_a_consistent_total():
    model = three_output(dj)
    by_list = dict(loss=LOSSES, loss_weights=[0.25, 1.0, 10.0])
    by_dict = dict(
        loss=dict(zip(["age", "income", "gender"], LOSSES)), loss_weights={"age": 0.25, "gender": 10.0}
    )  # income defaults to 1.0
    results = []
    for args in (by_list, by_dict):
        model.compile("sgd", **args)
        results.append(model.evaluate([XA, XB], Y, verbose=0, return_dict=True))
    assert results[0] == results[1]
    logs = results[0]
    np.testing.assert_allclose(
        logs["loss"], 0.25 * logs["age_loss"] + logs["income_loss"] + 10.0 * logs["gender_loss"], rtol=1e-6
    )
    model.compile(
        "sgd", loss={"income": "categorical_crossentropy"}
    )  # one trained output: no per-output logs
    history = model.fit([XA, XB], {"income": INCOME}, epochs=1, verbose=0).history
    assert list(history) == ["loss"]


def iterations(model) -> int:
    return int(optax.tree_utils.tree_get(model.opt_state, "iterations"))


def test_fit_continues_and_compile_resets_the_optimizer_only():
    model = small()
    x, y = XA[:20], AGE[:20].repeat(2, axis=1)
    model.compile(optimizers.Adam(0.01), "mse")
    start = model.get_weights()
    first = model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"]
    assert not np.allclose(model.get_weights()[0], start[0])
    assert iterations(model) == 6  # 3 steps per epoch, the last one padded
    second = model.fit(x, y, epochs=1, batch_size=8, verbose=0).history["loss"]
    assert second[0] < first[0] and iterations(model) == 9
    trained = model.get_weights()
    model.compile(optimizers.Adam(0.01), "mse")
    assert iterations(model) == 0
    for a, b in zip(model.get_weights(), trained):
        np.testing.assert_array_equal(a, b)


def test_compile_takes_keras_execution_switches_at_the_values_dagjax_runs_with():
    """Keras's compile(run_eagerly, jit_compile, auto_scale_loss): the compiled values work in both."""
    compiled = dict(run_eagerly=False, jit_compile=True, auto_scale_loss=False)
    keras_model = three_output(keras)
    keras_model.compile("sgd", LOSSES, **compiled)  # Keras takes exactly these
    model = small()
    model.compile("sgd", "mse", **compiled)
    model.fit(XA[:8], AGE[:8].repeat(2, axis=1), verbose=0)
    model.compile("sgd", "mse", jit_compile="auto", auto_scale_loss=True)
    for switch in (dict(run_eagerly=True), dict(jit_compile=False)):
        with pytest.raises(NotImplementedError, match="always compiles its steps.*jax.disable_jit"):
            model.compile("sgd", "mse", **switch)
    with pytest.raises(ValueError, match="jit_compile='yes'"):
        model.compile("sgd", "mse", jit_compile="yes")


def test_a_model_trains_under_jax_disable_jit_as_compiled():
    """What the run_eagerly error recommends works: fit under jax.disable_jit gives the compiled result."""
    weights = []
    for eager in (False, True):
        model = small()
        model.compile(optax.sgd(0.05), "mse")
        x, y = XA[:20], AGE[:20].repeat(2, axis=1)
        if eager:
            with jax.disable_jit():
                model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        else:
            model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_steps_per_execution_and_data_placement_do_not_change_training(monkeypatch):
    """One step per call or many, data on the device or batched from the host: the same training."""
    results = []
    for spe, on_device in ((1, True), (2, True), ("auto", True), ("auto", False)):
        monkeypatch.setattr(_sources, "fits_on_device", lambda size, on_device=on_device: on_device)
        model = small()
        model.compile(optax.sgd(0.05), "mse", steps_per_execution=spe)
        model.fit(XA[:30], AGE[:30].repeat(2, axis=1), epochs=2, batch_size=8, shuffle=False, verbose=0)
        results.append(model.get_weights())
        (loop,) = model.fit_session.loops
        step = loop._train_one if spe == 1 else loop._train_chunk
        assert step.__wrapped__._cache_size() == 1  # 2 epochs, each ending in a padded batch: 1 compile
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_auto_policy_fuses_steps_unless_a_convolution_runs_on_the_cpu():
    x = dj.Input((6, 6, 1))
    conv = dj.Model(x, layers.Dense(1)(layers.Flatten()(layers.Conv2D(2, 3)(x))))
    dense = three_output(dj, dropout=0.5)
    assert _perf.model_has_conv(conv) and not _perf.model_has_conv(dense)
    for model, fused in ((conv, jax.default_backend() != "cpu"), (dense, True)):
        loop = Loop(model, None, "auto")
        assert loop.fuse(per_batch_callbacks=False) == fused
        assert not loop.fuse(per_batch_callbacks=True)


def test_a_variable_length_conv_tower_trains_the_speed_heuristic_decides_from_the_real_shapes():
    """Deep Learning with Python, listing 7.3 (three outputs, a 1D conv tower over posts of any length),
    with a smaller vocabulary: an 8-step probe would shrink the tower to length 0."""
    vocabulary_size = 500
    num_income_groups = 10
    posts_input = dj.Input(shape=(None,), dtype="int32", name="posts")
    embedded_posts = layers.Embedding(vocabulary_size, 16)(posts_input)
    x = layers.Conv1D(8, 5, activation="relu")(embedded_posts)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(8, 5, activation="relu")(x)
    x = layers.Conv1D(8, 5, activation="relu")(x)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(8, 5, activation="relu")(x)
    x = layers.Conv1D(8, 5, activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(16, activation="relu")(x)
    age_prediction = layers.Dense(1, name="age")(x)
    income_prediction = layers.Dense(num_income_groups, activation="softmax", name="income")(x)
    gender_prediction = layers.Dense(1, activation="sigmoid", name="gender")(x)
    model = dj.Model(posts_input, [age_prediction, income_prediction, gender_prediction])
    model.compile(optimizer="rmsprop", loss=["mse", "categorical_crossentropy", "binary_crossentropy"])
    rng = np.random.default_rng(0)
    posts = rng.integers(0, vocabulary_size, size=(16, 300))
    targets = [rng.normal(size=(16, 1)), np.eye(num_income_groups)[rng.integers(0, 10, 16)],
               rng.integers(0, 2, size=(16, 1))]
    history = model.fit(posts, targets, epochs=1, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert not _perf.fuses_well(model)  # the old probe fails: the plain path, never an error


def test_the_persistent_compilation_cache_is_opt_in(monkeypatch, tmp_path, caplog):
    """compile changes nothing process-wide, unless DAGJAX_COMPILATION_CACHE asks for the cache."""
    saved = jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs
    model = small()
    settings = ((None, None), ("off", None), (str(tmp_path), str(tmp_path)), ("1", _perf.default_cache_dir()))
    try:
        for setting, expected in settings:
            jax.config.update("jax_compilation_cache_dir", None)
            if setting is None:
                monkeypatch.delenv("DAGJAX_COMPILATION_CACHE", raising=False)
            else:
                monkeypatch.setenv("DAGJAX_COMPILATION_CACHE", setting)
            with caplog.at_level("INFO", logger="dagjax"):
                model.compile("sgd", "mse")
            assert jax.config.jax_compilation_cache_dir == expected
        assert "persistent compilation cache is on" in caplog.text
    finally:
        jax.config.update("jax_compilation_cache_dir", saved[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", saved[1])


class Batches:
    """A re-iterable data set of (x, y) batches, the last one partial."""

    def __init__(self, n=20, size=8):
        self.n, self.size = n, size

    def __iter__(self):
        for start in range(0, self.n, self.size):
            end = min(start + self.size, self.n)
            yield XA[start:end], AGE[start:end].repeat(2, axis=1)

    def __len__(self):
        return -(-self.n // self.size)


def test_fit_evaluate_predict_from_generators_match_arrays():
    model = small()
    model.compile(optax.sgd(0.05), "mse")
    start = model.get_weights()
    history = model.fit(Batches(), epochs=2, verbose=0, validation_data=Batches()).history
    from_stream = model.get_weights()
    assert len(history["loss"]) == 2 and len(history["val_loss"]) == 2
    model.set_weights(start)
    model.compile(optax.sgd(0.05), "mse")
    x, y = XA[:20], AGE[:20].repeat(2, axis=1)
    model.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(from_stream, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        model.evaluate(Batches(), verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-6
    )
    predicted = model.predict((xb for xb, _ in Batches()), verbose=0)
    np.testing.assert_allclose(predicted, model.predict(x, batch_size=8, verbose=0), rtol=1e-6)
    assert predicted.shape == (20, 2)


def test_one_shot_generator_that_runs_dry_stops_training_with_a_warning():
    model = small()
    model.compile("sgd", "mse")
    with pytest.warns(UserWarning, match="ran out"):
        history = model.fit(iter(Batches()), epochs=3, verbose=0)
    assert len(history.history["loss"]) == 1


def test_predict_returns_numpy_in_the_output_structure():
    a = dj.Input((5,), name="a")
    model = dj.Model({"a": a}, {"mean": layers.Dense(1)(a), "logits": layers.Dense(3)(a)})
    out = model.predict({"a": XA[:11]}, batch_size=4, verbose=0)
    assert isinstance(out, dict) and sorted(out) == ["logits", "mean"]
    assert out["logits"].shape == (11, 3) and isinstance(out["logits"], np.ndarray)
    np.testing.assert_allclose(out["logits"], np.asarray(model({"a": XA[:11]})["logits"]), rtol=1e-6)


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin", self.params["epochs"], self.params["steps"]))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))
        if epoch == 1:
            self.model.stop_training = True

    def on_test_end(self, logs=None):
        self.events.append(("test_end",))


class PerBatch(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        assert isinstance(logs["loss"], float)
        assert self.model.params is not None
        self.batches.append(batch)


def test_callbacks_see_every_hook_and_can_stop_training():
    model = small()
    model.compile("sgd", "mse")
    recorder, per_batch = Recorder(), PerBatch()
    history = model.fit(
        XA[:20],
        AGE[:20].repeat(2, axis=1),
        epochs=5,
        batch_size=8,
        verbose=0,
        validation_split=0.2,
        callbacks=[recorder, per_batch],
    )
    assert recorder.events == [
        ("train_begin", 5, 2),
        ("test_end",),
        ("epoch_end", 0, ["loss", "val_loss"]),
        ("test_end",),
        ("epoch_end", 1, ["loss", "val_loss"]),
    ]
    assert per_batch.batches == [0, 1, 0, 1]  # batch hooks overridden: one call per step
    assert model.history is history and history.epoch == [0, 1]


@pytest.mark.parametrize("hook", ["on_train_batch_end", "on_epoch_end"])
def test_a_callback_that_raises_leaves_the_model_trained_up_to_there_as_keras_does(hook):
    def boom(lib):
        class Boom(lib.callbacks.Callback):
            def fire(self, step, logs=None):
                if step == 2:
                    raise RuntimeError("boom")

        setattr(Boom, hook, Boom.fire)
        return Boom()

    kmodel, model = three_output(keras), three_output(dj)
    model.set_weights(kmodel.get_weights())
    kmodel.compile(keras.optimizers.SGD(0.1), LOSSES)
    model.compile(optimizers.SGD(0.1), LOSSES)
    for m, lib in ((kmodel, keras), (model, dj)):
        with pytest.raises(RuntimeError, match="boom"):
            m.fit([XA, XB], Y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=[boom(lib)])
    for k, d in zip(kmodel.get_weights(), model.get_weights()):  # the donated buffers were not kept
        np.testing.assert_allclose(d, k, rtol=1e-5, atol=1e-6)
    expected = kmodel.evaluate([XA, XB], Y, verbose=0)[0]
    assert model.evaluate([XA, XB], Y, verbose=0)[0] == pytest.approx(expected)


def test_vector_metrics_and_log_order_as_keras_gives_them(tmp_path):
    kmodel, model = three_output(keras), three_output(dj)
    model.set_weights(kmodel.get_weights())
    for m, lib in ((kmodel, keras), (model, dj)):
        m.compile(lib.optimizers.SGD(0.1), LOSSES, weighted_metrics={"age": ["mae"]},
                  metrics={"gender": [lib.metrics.Precision(thresholds=[0.3, 0.7], name="precision")]})
    fit = dict(epochs=2, batch_size=16, shuffle=False, validation_split=0.2, verbose=0)
    logs = {}
    for m, lib in ((kmodel, keras), (model, dj)):
        csv = tmp_path / f"{lib.__name__}.csv"
        logs[lib] = m.fit([XA, XB], Y, callbacks=[lib.callbacks.CSVLogger(str(csv))], **fit).history
    assert list(logs[dj]) == list(logs[keras])  # one sorted order: "age_weighted_mae" after "val_..."
    for key, expected in logs[keras].items():
        np.testing.assert_allclose(np.array(logs[dj][key]), np.array(expected), rtol=1e-5, atol=1e-6)
    assert np.shape(logs[dj]["gender_precision"][0]) == (2,)
    rows = [(tmp_path / f"{lib.__name__}.csv").read_text().splitlines() for lib in (keras, dj)]
    assert rows[1][0] == rows[0][0]
    assert rows[1][1].count('"[') == rows[0][1].count('"[') == 2  # train and val precision, quoted lists
    evaluated = model.evaluate([XA, XB], Y, verbose=0, return_dict=True)
    np.testing.assert_allclose(evaluated["gender_precision"],
                               kmodel.evaluate([XA, XB], Y, verbose=0, return_dict=True)["gender_precision"])


def test_evaluate_lists_a_metric_in_both_metric_lists_as_keras_does():
    models = []
    for lib in (keras, dj):
        x = lib.Input((5,), name="x")
        models.append(lib.Model(x, lib.layers.Dense(1, name="out")(x)))
        models[-1].compile("sgd", "mse", metrics=["mae", "mse"], weighted_metrics=["mae"])
    kmodel, model = models
    model.set_weights(kmodel.get_weights())
    expected = kmodel.evaluate(XA, AGE, sample_weight=np.linspace(0, 1, N), verbose=0)
    got = model.evaluate(XA, AGE, sample_weight=np.linspace(0, 1, N), verbose=0)
    assert len(got) == len(expected) == 5  # "mae" listed twice, then "weighted_mae"
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_evaluate_lists_a_dict_models_losses_in_the_loss_dicts_order_as_keras_does():
    models = []
    for lib in (keras, dj):
        x = lib.Input((5,), name="x")
        outputs = {name: lib.layers.Dense(1, name=name)(x) for name in ("zeta", "alpha", "mid")}
        models.append(lib.Model(x, outputs))
        loss = {"mid": "mae", "zeta": "mse", "alpha": "mse"}  # neither sorted nor in output order
        models[-1].compile("sgd", loss=loss, metrics={"alpha": ["mae"]})
    kmodel, model = models
    model.set_weights(kmodel.get_weights())
    y = {"zeta": AGE, "alpha": 2 * AGE, "mid": -AGE}
    np.testing.assert_allclose(model.evaluate(XA, y, verbose=0), kmodel.evaluate(XA, y, verbose=0), rtol=1e-5)


def batch_mean_squared_error(y_true, y_pred):
    return jax.numpy.mean(jax.numpy.square(y_true - y_pred))  # one number per batch, not per sample


def negative_correlation(y_true, y_pred):
    """A loss of the whole batch: not a mean over rows, and undefined on a batch of one row."""
    t, p = y_true - jax.numpy.mean(y_true), y_pred - jax.numpy.mean(y_pred)
    return -jax.numpy.sum(t * p) / jax.numpy.sqrt(jax.numpy.sum(t * t) * jax.numpy.sum(p * p))


def one_output(lib, units, activation=None):
    x = lib.Input((5,), name="x")
    return lib.Model(x, lib.layers.Dense(units, activation=activation, name="out")(x))


@pytest.mark.parametrize(
    "loss, target, units, rows",
    [
        (batch_mean_squared_error, AGE, 1, 80),  # 80 samples: 5 full batches of 16
        (negative_correlation, AGE, 1, 80),
        (keras.losses.Huber(delta=0.5), AGE, 1, N),  # 90 samples: a padded last batch
        (keras.losses.SparseCategoricalCrossentropy(from_logits=True), INCOME.argmax(-1), 4, N),
        (keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), INCOME, 4, N),
    ],
    ids=["batch-mean", "batch-correlation", "Huber", "SparseCategoricalCE", "CategoricalCE"],
)
def test_batch_reduced_losses_and_keras_loss_objects_train_as_in_keras(loss, target, units, rows):
    """Keras loss objects (weighted per sample, padding too) and functions returning one number per batch."""
    kmodel, model = one_output(keras, units), one_output(dj, units)
    model.set_weights(kmodel.get_weights())
    kmodel.compile(keras.optimizers.SGD(0.1), loss)
    model.compile(optimizers.SGD(0.1), loss)  # what a user moving from Keras passes
    fit = dict(batch_size=16, epochs=2, shuffle=False, verbose=0, sample_weight=np.linspace(0.2, 1.0, rows))
    expected = kmodel.fit(XA[:rows], target[:rows], **fit).history["loss"]
    got = model.fit(XA[:rows], target[:rows], **fit).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_keras_objects_dagjax_cannot_reproduce_are_refused_not_approximated():
    model = one_output(dj, 4)
    with pytest.raises(TypeError, match="no counterpart of Keras's R2Score"):
        model.compile("sgd", "mse", metrics=[keras.metrics.R2Score()])
    with pytest.raises(NotImplementedError, match="SparseTopKCategoricalAccuracy has no from_sorted_ids"):
        top_k = keras.metrics.SparseTopKCategoricalAccuracy(from_sorted_ids=True)
        model.compile("sgd", "mse", metrics=[top_k])


def test_a_batch_reduced_loss_on_a_padded_batch_takes_the_padded_batch_as_its_batch():
    """Keras trains a smaller last batch; dagjax's padded one repeats real samples (never a one-row batch)."""
    model = one_output(dj, 1)
    model.compile(optimizers.SGD(0.1), negative_correlation)
    losses = model.fit(XA, AGE, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]  # finite, and it learns


def test_a_batch_reduced_metric_and_keras_metric_objects_log_as_in_keras():
    metrics = lambda: [
        batch_mean_squared_error,
        negative_correlation,
        keras.metrics.AUC(curve="PR", name="pr"),
        keras.metrics.Precision(thresholds=0.3, name="p"),
        keras.metrics.BinaryAccuracy(threshold=0.7, name="a"),
    ]
    kmodel, model = one_output(keras, 1, "sigmoid"), one_output(dj, 1, "sigmoid")
    model.set_weights(kmodel.get_weights())
    kmodel.compile(keras.optimizers.SGD(0.1), "binary_crossentropy", metrics=metrics())
    model.compile(optimizers.SGD(0.1), "binary_crossentropy", metrics=metrics())
    fit = dict(batch_size=16, epochs=2, shuffle=False, verbose=0)  # 80 samples: no padding
    expected = kmodel.fit(XA[:80], GENDER[:80], **fit).history
    got = model.fit(XA[:80], GENDER[:80], **fit).history
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, err_msg=key)
    padded = model.fit(XA, GENDER, **fit).history  # 90 samples: the last batch is padded
    assert all(np.all(np.isfinite(values)) for values in padded.values())


def test_progress_bar_prints_keras_style_lines(capsys):
    model = small()
    model.compile("sgd", "mse")
    x, y = XA[:20], AGE[:20].repeat(2, axis=1)
    model.fit(x, y, epochs=2, batch_size=8, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("3/3 ━━━━━━━━━━━━━━━━━━━━") and " - loss: " in lines[1]
    model.fit(x, y, epochs=2, batch_size=8, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[1].startswith("3/3 - ") and "/step - loss: " in lines[1]
    model.fit(x, y, epochs=1, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""


def test_nan_loss_is_reported_in_the_logs():
    model = small()
    model.compile("sgd", "mse")
    x = XA[:8].copy()
    x[3, 0] = np.nan
    history = model.fit(x, AGE[:8].repeat(2, axis=1), verbose=0)
    assert np.isnan(history.history["loss"][0])


def test_bad_input_is_reported_in_the_users_terms():
    model = three_output(dj)
    with pytest.raises(ValueError, match="compile"):
        model.fit([XA, XB], Y)
    model.compile("sgd", LOSSES)
    with pytest.raises(ValueError, match="x 'a' has 90.*y 'age' has 80"):
        model.fit([XA, XB], [AGE[:80], INCOME, GENDER])
    with pytest.raises(ValueError, match=r"missing \['b'\].*unknown \['bb'\]"):
        model.fit({"a": XA, "bb": XB}, Y)
    with pytest.raises(ValueError, match=r"unknown outputs \['incme'\]"):
        model.fit([XA, XB], {"age": AGE, "incme": INCOME, "gender": GENDER})
    with pytest.raises(ValueError, match=r"output 'income' has shape \(90, 3\).*\(None, 4\)"):
        model.fit([XA, XB], [AGE, INCOME[:, :3], GENDER])
    with pytest.raises(ValueError, match="batch_size"):
        model.fit([XA, XB], Y, batch_size=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit([XA, XB], Y, validation_split=1.0)
    with pytest.raises(ValueError, match="empty"):
        model.fit([XA[:0], XB[:0]], [v[:0] for v in Y])
    with pytest.raises(ValueError, match=r"Input 'b' .* expected shape=\(None, 3\)"):
        model.predict([XA, XA])
    with pytest.raises(ValueError, match=r"list of 2 entries.*\['age', 'income', 'gender'\]"):
        model.compile("sgd", ["mse", "mse"])


class Meddler(callbacks.Callback):
    """Changes the weights after epoch 0 and stops learning from epoch 1 on."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.model.set_weights([np.ones_like(w) for w in self.model.get_weights()])

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.opt_state = optimizers.set_learning_rate(self.model.opt_state, 0.0)


def test_weights_and_learning_rate_changed_by_callbacks_are_trained_on():
    model = small()
    model.compile(optimizers.SGD(0.1), "mse")
    model.fit(XA[:20], AGE[:20].repeat(2, axis=1), epochs=2, batch_size=8, verbose=0, callbacks=[Meddler()])
    for w in model.get_weights():
        np.testing.assert_array_equal(w, np.ones_like(w))
    assert float(optimizers.get_learning_rate(model.opt_state)) == 0.0
