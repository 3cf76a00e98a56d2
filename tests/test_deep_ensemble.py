"""DeepEnsemble: K seeds of one architecture trained as one program, each member equal to fit alone."""

import jax
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers

N, FEATURES, K = 40, 4, 3  # 40 samples in batches of 16: the last batch is padded, as fit pads it


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    return x, (x[:, :1] * 2 - np.tanh(x[:, 1:2])).astype("float32")


def _mlp():
    inputs = dj.Input((FEATURES,))
    hidden = layers.Dropout(0.2)(layers.Dense(8, activation="relu")(inputs))
    return dj.Model(inputs, layers.Dense(1)(hidden))


def _trained(shuffle=True):
    x, y = _data()
    model = _mlp()
    ensemble = dj.ensemble.DeepEnsemble(model, K, seed=5)
    ensemble.compile("adam", "mse", metrics=["mae"])
    history = ensemble.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=shuffle)
    return model, ensemble, history, x, y


def _assert_trees_close(got, want, rtol=1e-5, atol=1e-6):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


@pytest.mark.parametrize("shuffle", [True, "per_member"])
def test_each_member_ends_as_fit_alone_from_its_seed(shuffle):
    model, ensemble, history, x, y = _trained(shuffle)
    for i, member in enumerate(ensemble.members):
        model.params, model.state = model.init(jax.random.key(5 + i))
        model.compile("adam", "mse", metrics=["mae"], seed=5 + i if shuffle == "per_member" else 5)
        alone = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
        _assert_trees_close(member.params, model.params)
        np.testing.assert_allclose(history.members[i]["loss"], alone["loss"], rtol=1e-5)
    mean_loss = np.mean([h["loss"] for h in history.members], axis=0)
    np.testing.assert_allclose(history.history["loss"], mean_loss, rtol=1e-6)
    assert set(history.history) == {"loss", "mae"} and history.epoch == [0, 1]
    assert all(type(v) is float for v in history.history["loss"])


def test_members_differ_and_predict_gives_their_mean_and_std():
    _, ensemble, _, x, _ = _trained()
    first, second = (m.params["dense"]["kernel"] for m in ensemble.members[:2])
    assert not np.allclose(first, second)
    outputs = np.stack([m.predict(x, verbose=0) for m in ensemble.members])
    assert not np.allclose(outputs[0], outputs[1])
    np.testing.assert_allclose(ensemble.predict(x), outputs.mean(axis=0), rtol=1e-6)
    mean, std = ensemble.predict(x, return_std=True)
    np.testing.assert_allclose(mean, outputs.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, outputs.std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(ensemble.averaged().predict(x, verbose=0), mean, rtol=1e-5, atol=1e-6)


def test_evaluate_scores_the_averaged_model():
    _, ensemble, _, x, y = _trained()
    logs = ensemble.evaluate(x, y, verbose=0, return_dict=True)
    mean = ensemble.predict(x)
    np.testing.assert_allclose(logs["loss"], np.mean((mean - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(logs["mae"], np.mean(np.abs(mean - y)), rtol=1e-5)


def test_save_and_load_round_trip_the_predictions(tmp_path):
    _, ensemble, _, x, y = _trained()
    ensemble.save(tmp_path / "deep.dj")
    loaded = dj.ensemble.DeepEnsemble.load(tmp_path / "deep.dj")
    assert loaded.n_members == K and [m.name for m in loaded.members] == [f"member_{i}" for i in range(K)]
    np.testing.assert_array_equal(loaded.predict(x, return_std=True), ensemble.predict(x, return_std=True))
    np.testing.assert_allclose(dj.load_model(tmp_path / "deep.dj").predict(x, verbose=0), ensemble.predict(x),
                               rtol=1e-5, atol=1e-6)
    before = loaded.evaluate(x, y, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=3, verbose=0)  # continues from the loaded weights
    assert loaded.evaluate(x, y, verbose=0) < before


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="n_members >= 1"):
        dj.ensemble.DeepEnsemble(_mlp(), 0)
    ensemble = dj.ensemble.DeepEnsemble(_mlp(), 2)
    x, y = _data()
    with pytest.raises(ValueError, match="compile"):
        ensemble.fit(x, y)
    ensemble.compile("sgd", "mse")
    with pytest.raises(ValueError, match="per_member"):
        ensemble.fit(x, y, shuffle="each")


class _Recorder(dj.callbacks.Callback):
    """Keeps what each epoch hook saw: the epochs begun, the logs and the ensemble's params."""

    def __init__(self):
        super().__init__()
        self.begun, self.logs, self.weights = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.begun.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(logs)
        self.weights.append(self.model.params)


def test_callbacks_get_mean_logs_stop_training_and_restore_weights_with_fits_arguments():
    x, y = _data(3)
    weights = np.linspace(0.0, 2.0, N).astype("float32")
    model = _mlp()
    ensemble = dj.ensemble.DeepEnsemble(model, 2, seed=1)
    ensemble.compile("adam", "mse")
    recorder = _Recorder()  # no epoch improves by min_delta: it stops after the second, restoring the first
    stopper = dj.callbacks.EarlyStopping(monitor="loss", min_delta=1e9, patience=0, restore_best_weights=True)
    history = ensemble.fit(x, y, batch_size=16, epochs=5, verbose=0, validation_split=0.25,
                           sample_weight=weights, callbacks=[recorder, stopper])
    assert history.epoch == [0, 1] and recorder.begun == [0, 1]
    assert recorder.logs[1] == {name: values[1] for name, values in history.history.items()}
    _assert_trees_close(ensemble.params, recorder.weights[0], rtol=0, atol=0)  # the best epoch's weights
    _assert_trees_close(ensemble.members[1].params, jax.tree.map(lambda a: a[1], recorder.weights[0]))
    model.params, model.state = model.init(jax.random.key(1))  # member 0, trained by fit
    model.compile("adam", "mse", seed=1)
    alone = model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25, sample_weight=weights)
    assert set(alone.history) == {"loss", "val_loss"}
    for name, values in alone.history.items():
        np.testing.assert_allclose(history.members[0][name], values, rtol=1e-5)


def test_callbacks_an_ensemble_cannot_run_are_refused_before_training():
    x, y = _data()
    ensemble = dj.ensemble.DeepEnsemble(_mlp(), 2)
    ensemble.compile("sgd", "mse")
    before = ensemble.params

    class PerBatch(dj.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    with pytest.raises(ValueError, match="cannot run ReduceLROnPlateau: it needs one model's training"):
        ensemble.fit(x, y, callbacks=[dj.callbacks.ReduceLROnPlateau()])
    with pytest.raises(ValueError, match=r"batch hooks cannot run \(PerBatch override one\)"):
        ensemble.fit(x, y, callbacks=[PerBatch()])
    _assert_trees_close(ensemble.params, before, rtol=0, atol=0)


def test_an_interrupted_fit_leaves_the_members_last_weights_and_the_next_fit_runs(monkeypatch):
    from dagjax.training.population import _fit

    _, ensemble, _, x, y = _trained()
    before = ensemble.params
    reset, calls = _fit.reset_member_metrics, []

    def interrupt_second_epoch(*args):
        calls.append(1)
        if len(calls) == 2:  # the first epoch has consumed the state the fit continued from
            raise KeyboardInterrupt
        return reset(*args)

    monkeypatch.setattr(_fit, "reset_member_metrics", interrupt_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        ensemble.fit(x, y, batch_size=16, epochs=3, verbose=0)
    monkeypatch.undo()
    _assert_trees_close(ensemble.params, before, rtol=0, atol=0)
    assert len(ensemble.fit(x, y, batch_size=16, epochs=1, verbose=0).history["loss"]) == 1
