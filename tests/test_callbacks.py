"""Callbacks: Keras 3's decisions on the same logs, the chapter's listings, and the custom-callback example.

Parity tests drive a Keras callback (on a tiny Keras model) and the dagjax
callback of the same name through one scripted sequence of epoch logs, and
compare what each decided: when to stop, which epochs saved, the learning
rate after every epoch, the weights restored.
"""

import csv
import importlib.util
import pathlib

import keras
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import callbacks, layers, optimizers

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 2)).astype("float32")
Y = (X[:, :1] - 0.5 * X[:, 1:] > 0).astype("float32")


# ------------------------------------------------------------------ scripted parity harness
@pytest.fixture(scope="module")
def keras_model():
    return fresh_keras_model()


def fresh_keras_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.SGD(0.5), "binary_crossentropy", metrics=["acc"])
    model.evaluate(X[:4], Y[:4], verbose=0)  # builds the compiled metrics, which mode="auto" reads
    return model


def dagjax_model():
    x = dj.Input((2,))
    model = dj.Model(x, layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizers.SGD(0.5), "binary_crossentropy", metrics=["acc"])
    return model


def learning_rate(model) -> float:
    return float(model.optimizer.learning_rate)  # the same attribute in both


def set_learning_rate(model, value: float) -> None:
    model.optimizer.learning_rate = value


def epoch_weights(model, epoch: int) -> list:
    """Weights that say which epoch they are from."""
    return [np.full(w.shape, epoch, "float32") for w in model.get_weights()]


def drive(callback, model, sequence: list[dict]) -> dict:
    """Run ``callback`` through epochs with these logs, as ``fit`` would; what it decided."""
    set_learning_rate(model, 0.5)
    model.stop_training = False
    callback.set_model(model)
    callback.set_params({"epochs": len(sequence), "steps": 1, "verbose": 0})
    callback.on_train_begin()
    rates, logged = [], []
    for epoch, logs in enumerate(sequence):
        model.set_weights(epoch_weights(model, epoch))
        callback.on_epoch_begin(epoch)
        logs = dict(logs)
        callback.on_epoch_end(epoch, logs)
        rates.append(learning_rate(model))
        logged.append(logs.get("learning_rate"))
        if model.stop_training:
            break
    callback.on_train_end(logs)
    return {
        "last_epoch": epoch,
        "rates": rates,
        "logged_rates": logged,
        "weights": [float(w.ravel()[0]) for w in model.get_weights()],
        "best": getattr(callback, "best", None),
        "wait": getattr(callback, "wait", None),
    }


def sequences(monitor: str, count: int) -> list[list[dict]]:
    """Random log sequences with ties, plateaus and the odd NaN."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(count):
        steps = rng.choice([-0.2, -0.05, 0.0, 0.0, 0.03, 0.1], size=12)
        values = np.round(1.0 + np.cumsum(steps), 3)
        values[rng.random(12) < 0.05] = np.nan
        out.append([{"loss": 1.0, monitor: float(v)} for v in values])
    return out


EARLY_STOPPING = [
    dict(monitor="val_loss"),
    dict(monitor="val_loss", patience=2),
    dict(monitor="val_loss", patience=3, min_delta=0.05, restore_best_weights=True),
    dict(monitor="val_acc", patience=1, mode="max", baseline=1.1),
    dict(monitor="val_acc", patience=2, restore_best_weights=True, start_from_epoch=3),
    dict(monitor="val_loss", patience=1, mode="min", baseline=0.8, restore_best_weights=True),
]


@pytest.mark.parametrize("kwargs", EARLY_STOPPING, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_early_stopping_decides_as_keras(kwargs, keras_model):
    model = dagjax_model()
    model.fit(X[:8], Y[:8], epochs=1, verbose=0)  # the compiled metrics mode="auto" reads
    for sequence in sequences(kwargs["monitor"], 8):
        expected = drive(keras.callbacks.EarlyStopping(**kwargs), keras_model, sequence)
        got = drive(callbacks.EarlyStopping(**kwargs), model, sequence)
        assert got == expected, sequence


REDUCE_LR = [
    dict(patience=2),
    dict(patience=0, factor=0.5, min_lr=0.1),
    dict(patience=1, factor=0.2, cooldown=2, min_delta=0.05),
    dict(monitor="val_acc", patience=2, mode="max", cooldown=1),
    dict(monitor="val_acc", patience=1),
]


@pytest.mark.parametrize("kwargs", REDUCE_LR, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
def test_reduce_lr_on_plateau_decides_as_keras(kwargs, keras_model):
    model = dagjax_model()
    model.fit(X[:8], Y[:8], epochs=1, verbose=0)
    for sequence in sequences(kwargs.get("monitor", "val_loss"), 8):
        expected = drive(keras.callbacks.ReduceLROnPlateau(**kwargs), keras_model, sequence)
        got = drive(callbacks.ReduceLROnPlateau(**kwargs), model, sequence)
        assert got == expected, sequence


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(mode="max", monitor="val_acc"),
        dict(initial_value_threshold=0.9),
        dict(save_best_only=False),
    ],
)
def test_model_checkpoint_saves_the_epochs_keras_saves(kwargs, keras_model, tmp_path):
    kwargs = {"save_best_only": True, **kwargs}
    model = dagjax_model()
    monitor = kwargs.get("monitor", "val_loss")
    pattern = "{epoch:02d}-{" + monitor + ":.3f}"
    for i, sequence in enumerate(sequences(monitor, 4)):
        kdir, ddir = tmp_path / f"keras{i}", tmp_path / f"dagjax{i}"
        kcb = keras.callbacks.ModelCheckpoint(
            str(kdir / f"{pattern}.weights.h5"), save_weights_only=True, **kwargs
        )
        dcb = callbacks.ModelCheckpoint(str(ddir / f"{pattern}.dj"), save_weights_only=True, **kwargs)
        assert drive(dcb, model, sequence)["best"] == drive(kcb, keras_model, sequence)["best"]
        saved = sorted(p.name.removesuffix(".dj") for p in ddir.iterdir())
        assert saved == sorted(p.name.removesuffix(".weights.h5") for p in kdir.iterdir())
        for name in saved:  # each file holds the weights of the epoch in its name
            model.load_weights(ddir / f"{name}.dj")
            assert model.get_weights()[0][0, 0] == int(name[:2]) - 1


@pytest.mark.parametrize(
    "schedule", [lambda epoch, lr: lr * 0.5 if epoch % 2 else lr, lambda epoch: 0.1 / (epoch + 1)]
)
def test_learning_rate_scheduler_sets_the_rates_keras_sets(schedule, keras_model):
    sequence = [{"loss": 1.0}] * 5
    expected = drive(keras.callbacks.LearningRateScheduler(schedule), keras_model, sequence)
    got = drive(callbacks.LearningRateScheduler(schedule), dagjax_model(), sequence)
    assert got == expected and len(set(got["rates"])) > 1


def test_mode_auto_reads_the_metric_direction_as_keras(keras_model):
    model = dagjax_model()
    model.fit(X[:8], Y[:8], epochs=1, verbose=0)
    for monitor in ("val_acc", "acc", "loss", "val_loss"):
        kcb, dcb = keras.callbacks.EarlyStopping(monitor), callbacks.EarlyStopping(monitor)
        kcb.set_model(keras_model)
        dcb.set_model(model)
        kcb._set_monitor_op()
        dcb._set_monitor_op()
        assert dcb.monitor_op.__name__ == kcb.monitor_op.__name__ and dcb.min_delta == kcb.min_delta
    unknown = callbacks.ReduceLROnPlateau("val_f1")
    unknown.set_model(model)
    with pytest.raises(ValueError, match="monitor=val_f1.*mode='max'"):
        unknown.on_epoch_end(0, {"val_f1": 0.5})



def test_mode_auto_follows_each_metric_direction_as_keras():
    names = ["mse", "auc", "cosine_similarity", "kl_divergence", "true_positives"]
    keras_model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    keras_model.compile("sgd", "binary_crossentropy", metrics=names)
    keras_model.evaluate(X[:4], Y[:4], verbose=0)
    x = dj.Input((2,))
    model = dj.Model(x, layers.Dense(1, activation="sigmoid")(x))
    model.compile("sgd", "binary_crossentropy", metrics=names)
    model.fit(X[:8], Y[:8], epochs=1, verbose=0)
    for monitor in names[:-1]:
        kcb, dcb = keras.callbacks.EarlyStopping(monitor), callbacks.EarlyStopping(monitor)
        kcb.set_model(keras_model)
        dcb.set_model(model)
        kcb._set_monitor_op()
        dcb._set_monitor_op()
        assert dcb.monitor_op.__name__ == kcb.monitor_op.__name__, monitor
    for cb, m in ((keras.callbacks.EarlyStopping, keras_model), (callbacks.EarlyStopping, model)):
        counts = cb("val_true_positives")  # a count: Keras gives it no direction
        counts.set_model(m)
        with pytest.raises(ValueError, match="monitor=val_true_positives.*mode='max'"):
            counts._set_monitor_op()

# ------------------------------------------------------------------ in fit: the chapter's listings
def test_chapter_listing_early_stopping_on_acc_and_best_checkpoint(tmp_path, keras_model):
    x = dj.Input((2,))
    h = layers.Dense(8, activation="relu")(x)
    model = dj.Model(x, layers.Dense(1, activation="sigmoid")(h))
    model.compile(optimizer=optimizers.RMSprop(0.05), loss="binary_crossentropy", metrics=["acc"])
    noisy = np.where(RNG.random(Y.shape) < 0.3, 1 - Y, Y)  # label noise: accuracy soon stalls
    callbacks_list = [
        callbacks.EarlyStopping(monitor="acc", patience=1),
        callbacks.ModelCheckpoint(
            filepath=str(tmp_path / "my_model.dj"), monitor="val_loss", save_best_only=True
        ),
    ]
    history = model.fit(
        X[:32],
        noisy[:32],
        epochs=30,
        batch_size=8,
        callbacks=callbacks_list,
        validation_data=(X[32:], Y[32:]),
        verbose=0,
    ).history
    stopped = len(history["acc"])
    assert 2 <= stopped < 30
    # Keras stops at the same epoch on these logs (the padding lets it run on if it would not stop).
    replay = drive(
        keras.callbacks.EarlyStopping(monitor="acc", patience=1),
        keras_model,
        [{"acc": a} for a in history["acc"]] + [{"acc": -1.0}] * 3,
    )
    assert replay["last_epoch"] == stopped - 1
    best = dj.load_model(tmp_path / "my_model.dj")
    best.compile(loss="binary_crossentropy", metrics=["acc"])
    val_loss = best.evaluate(X[32:], Y[32:], batch_size=8, verbose=0, return_dict=True)["loss"]
    assert val_loss == pytest.approx(min(history["val_loss"]), rel=1e-6)


def test_reduce_lr_on_plateau_lowers_the_rate_without_recompiling(keras_model):
    model = dagjax_model()
    model.compile(optimizers.SGD(1e-7), "binary_crossentropy")
    reduce = callbacks.ReduceLROnPlateau(factor=0.1, patience=10)  # the chapter's settings
    history = model.fit(X, Y, epochs=13, batch_size=16, validation_split=0.25, callbacks=[reduce], verbose=0)
    rates = history.history["learning_rate"]
    np.testing.assert_allclose(rates, [1e-7] * 11 + [1e-8] * 2, rtol=1e-6)
    replay = drive(
        keras.callbacks.ReduceLROnPlateau(factor=0.1, patience=10),
        keras_model,
        [{"val_loss": v} for v in history.history["val_loss"]],
    )
    np.testing.assert_allclose(replay["rates"], np.array([0.5] * 10 + [0.05] * 3), rtol=1e-6)
    assert next(iter(model.fit_session.loops))._train_chunk.__wrapped__._cache_size() == 1


def test_scheduled_rate_is_the_one_training_uses():
    model = dagjax_model()
    initial = model.get_weights()
    seen = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(model.get_weights()))
    schedule = callbacks.LearningRateScheduler(lambda epoch, lr: 0.0 if epoch >= 1 else lr)
    history = model.fit(X, Y, epochs=3, batch_size=16, callbacks=[schedule, record], verbose=0)
    assert history.history["learning_rate"] == [0.5, 0.0, 0.0]
    assert not np.array_equal(seen[0][0], initial[0])
    for later in seen[1:]:
        for a, b in zip(later, seen[0]):
            np.testing.assert_array_equal(a, b)


def test_a_keras_style_callback_reads_and_sets_model_optimizer_learning_rate():
    def halver(lib):
        class Halve(lib.callbacks.Callback):  # the same code runs on both
            def on_epoch_begin(self, epoch, logs=None):
                self.model.optimizer.learning_rate = float(self.model.optimizer.learning_rate) / 2

        return Halve()

    keras_model, model = fresh_keras_model(), dagjax_model()
    model.set_weights(keras_model.get_weights())
    for m, lib in ((keras_model, keras), (model, dj)):
        m.fit(X, Y, epochs=3, batch_size=16, shuffle=False, callbacks=[halver(lib)], verbose=0)
    assert float(model.optimizer.learning_rate) == float(keras_model.optimizer.learning_rate) == 0.0625
    assert int(model.optimizer.iterations) == int(keras_model.optimizer.iterations) == 9
    for k, d in zip(keras_model.get_weights(), model.get_weights()):
        np.testing.assert_allclose(d, k, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ TerminateOnNaN, CSVLogger, LambdaCallback
def test_terminate_on_nan_stops_in_the_epoch_and_keeps_fit_fused(capsys):
    model = dagjax_model()
    x = X.copy()
    x[40, 0] = np.nan  # batch 5 of 6
    history = model.fit(
        x, Y, epochs=4, batch_size=8, shuffle=False, callbacks=[callbacks.TerminateOnNaN()], verbose=2
    )
    out = capsys.readouterr().out
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])
    assert "Invalid loss, terminating training" in out and "one step per compiled call" not in out
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered"):
        model.fit(
            x,
            Y,
            batch_size=8,
            shuffle=False,
            callbacks=[callbacks.TerminateOnNaN(raise_error=True)],
            verbose=0,
        )


def test_csv_logger_writes_what_keras_writes(tmp_path, keras_model):
    sequence = [{"loss": 0.5 - 0.1 * e, "acc": 0.25 * e, "val_loss": 1 / (e + 3)} for e in range(3)]
    for append in (False, True):
        for name, lib in (("keras", keras), ("dagjax", dj)):
            drive(
                lib.callbacks.CSVLogger(str(tmp_path / f"{name}.csv"), separator=";", append=append),
                keras_model if lib is keras else dagjax_model(),
                sequence,
            )
        assert (tmp_path / "dagjax.csv").read_text() == (tmp_path / "keras.csv").read_text()
    model = dagjax_model()
    history = model.fit(
        X,
        Y,
        epochs=2,
        batch_size=16,
        validation_split=0.25,
        verbose=0,
        callbacks=[callbacks.CSVLogger(tmp_path / "fit.csv")],
    )
    with open(tmp_path / "fit.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    for key, values in history.history.items():
        assert [float(r[key]) for r in rows] == values


def test_lambda_callback_calls_its_functions_positionally_and_keeps_fit_fused(capsys):
    model = dagjax_model()
    events = []
    fused = callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("begin"),
        on_epoch_end=lambda e, log: events.append((e, sorted(log))),
        on_test_end=lambda logs: events.append("test"),
    )
    model.fit(X, Y, epochs=2, batch_size=16, validation_split=0.25, callbacks=[fused], verbose=2)
    assert events == [
        "begin",
        "test",
        (0, ["acc", "loss", "val_acc", "val_loss"]),
        "test",
        (1, ["acc", "loss", "val_acc", "val_loss"]),
    ]
    assert "one step per compiled call" not in capsys.readouterr().out
    batches = []
    per_batch = callbacks.LambdaCallback(on_batch_end=lambda b, log: batches.append((b, type(log["loss"]))))
    model.fit(X, Y, epochs=1, batch_size=16, callbacks=[per_batch], verbose=2)
    assert batches == [(0, float), (1, float), (2, float)]
    notice = [line for line in capsys.readouterr().out.splitlines() if "one step per compiled call" in line]
    assert notice == [
        "Running one step per compiled call, because LambdaCallback.on_batch_end must see every batch "
        "(set `chunk_safe = True` on a callback whose batch hooks can run once per chunk of steps)."
    ]
    with pytest.raises(TypeError, match=r"unknown hooks \['on_epoch_ends'\]"):
        callbacks.LambdaCallback(on_epoch_ends=print)


def test_batch_hooks_are_free_unless_overridden():
    assert not callbacks.CallbackList(
        [
            callbacks.EarlyStopping(),
            callbacks.ModelCheckpoint("m.dj"),
            callbacks.TerminateOnNaN(),
            callbacks.ReduceLROnPlateau(),
            callbacks.CSVLogger("c.csv"),
        ]
    ).needs_every_batch("train")
    assert callbacks.CallbackList([callbacks.ModelCheckpoint("m.dj", save_freq=2)]).needs_every_batch("train")


def test_model_checkpoint_by_batch_and_bad_arguments(tmp_path):
    model = dagjax_model()
    path = str(tmp_path / "{epoch}-{batch}.dj")
    model.fit(
        X, Y, epochs=2, batch_size=8, callbacks=[callbacks.ModelCheckpoint(path, save_freq=4)], verbose=0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1-4.dj", "2-2.dj", "2-6.dj"]
    restored = dj.load_model(tmp_path / "2-6.dj")
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(KeyError, match=r"Failed to format.*val_los.* is not among.*val_loss"):
        model.fit(
            X,
            Y,
            validation_split=0.25,
            verbose=0,
            callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "{val_los:.2f}.dj"))],
        )
    with pytest.raises(ValueError, match="Unrecognized save_freq"):
        callbacks.ModelCheckpoint("m.dj", save_freq="batch")
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=2.0)


def test_learning_rate_callbacks_explain_an_optimizer_without_a_settable_rate():
    model = dagjax_model()
    model.compile(optax.sgd(0.1), "binary_crossentropy")
    with pytest.raises(AttributeError, match="no learning_rate in its state.*inject_hyperparams"):
        model.optimizer.learning_rate  # noqa: B018
    with pytest.raises(ValueError, match="no injected learning_rate"):
        model.optimizer.learning_rate = 0.1
    for callback in (
        callbacks.LearningRateScheduler(lambda epoch, lr: lr),
        callbacks.ReduceLROnPlateau("loss"),
    ):
        with pytest.raises(ValueError, match="without an injected learning_rate.*inject_hyperparams"):
            model.fit(X, Y, verbose=0, callbacks=[callback])
    with pytest.raises(ValueError, match="no injected learning_rate"):
        model.fit(X, Y, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.1)])
    model.compile(optimizers.SGD(0.1), "binary_crossentropy")
    with pytest.raises(ValueError, match="should be a float. Got: 1"):
        model.fit(X, Y, verbose=0, callbacks=[callbacks.LearningRateScheduler(lambda epoch: 1)])


def test_early_stopping_restores_the_best_weights_in_fit():
    model = dagjax_model()
    snapshots = []
    record = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    # Label-flipped validation data: the better the fit, the worse val_loss, so epoch 0 is best.
    history = model.fit(
        X, Y, epochs=20, batch_size=8, callbacks=[record, stop], verbose=0, validation_data=(X, 1 - Y)
    ).history
    assert len(history["val_loss"]) == 3 and stop.best_epoch == int(np.argmin(history["val_loss"])) == 0
    for a, b in zip(model.get_weights(), snapshots[0]):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ the custom-callback example
def test_activation_logger_example_saves_every_layers_activations(tmp_path):
    spec = importlib.util.spec_from_file_location("activation_logger", EXAMPLES / "activation_logger.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    model = example.main(str(tmp_path), epochs=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "activations_at_epoch_0.npz",
        "activations_at_epoch_1.npz",
    ]
    last = np.load(tmp_path / "activations_at_epoch_1.npz")
    assert list(last) == ["features", "hidden", "score"]
    assert [last[k].shape for k in last] == [(1, 8), (1, 16), (1, 1)]
    np.testing.assert_allclose(last["score"], model.predict(last["features"], verbose=0), rtol=1e-6)
    first = np.load(tmp_path / "activations_at_epoch_0.npz")
    assert not np.array_equal(first["hidden"], last["hidden"])  # taken from the weights of each epoch


def test_every_keras_callback_argument_and_default_is_there():
    import inspect

    for name in (
        "EarlyStopping",
        "ModelCheckpoint",
        "ReduceLROnPlateau",
        "LearningRateScheduler",
        "TerminateOnNaN",
        "CSVLogger",
        "BackupAndRestore",
        "TensorBoard",
    ):
        ours = inspect.signature(getattr(callbacks, name)).parameters
        theirs = inspect.signature(getattr(keras.callbacks, name)).parameters
        for arg, param in theirs.items():
            if param.kind is param.VAR_KEYWORD:
                continue
            assert arg in ours and ours[arg].default == param.default, (name, arg)
        assert list(ours)[: len(theirs)] == [a for a, p in theirs.items() if p.kind is not p.VAR_KEYWORD]
    with pytest.raises(NotImplementedError, match="end of each epoch only"):
        callbacks.BackupAndRestore("backup", save_freq=100)
    with pytest.raises(NotImplementedError, match="jax.profiler.trace"):
        callbacks.TensorBoard(profile_batch=2)
