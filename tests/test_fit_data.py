"""How fit / evaluate / predict walk their data: steps, passes, streams, validation, as Keras 3 does."""

import warnings

import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers, optimizers
from dagjax.training.fit import _sources

RNG = np.random.default_rng(3)
X = RNG.normal(size=(64, 4)).astype("float32")
Y = (X @ RNG.normal(size=(4, 1)) + 3.0 * (np.arange(64) >= 32)[:, None]).astype("float32")  # halves differ


def pair(inputs=4):
    """The same one-output regression in Keras and dagjax, with Keras's (seeded) initial weights in both."""
    keras.utils.set_random_seed(0)
    models = []
    for lib in (keras, dj):
        x = lib.Input((inputs,), name="x")
        h = lib.layers.Dense(3, activation="tanh", name="hidden")(x)
        models.append(lib.Model(x, lib.layers.Dense(1, name="out")(h)))
    kmodel, model = models
    model.set_weights(kmodel.get_weights())
    kmodel.compile(keras.optimizers.SGD(0.05), "mse")
    model.compile(optimizers.SGD(0.05), "mse")
    return kmodel, model


def fit_both(kmodel, model, *args, **kwargs):
    """Both fits' histories and the warnings each raised."""
    results = []
    for m in (kmodel, model):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = m.fit(*args, verbose=0, **kwargs).history
        results.append((history, [str(w.message) for w in caught if "ran out" in str(w.message)]))
    return results


def assert_histories_close(expected: dict, got: dict):
    assert list(got) == list(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=2e-5, atol=1e-6, err_msg=key)


ON_DEVICE_AND_FROM_HOST = pytest.mark.parametrize("on_device", [True, False], ids=["device", "host"])


@ON_DEVICE_AND_FROM_HOST
def test_steps_per_epoch_carries_on_where_the_last_epoch_stopped(monkeypatch, on_device):
    monkeypatch.setattr(_sources, "fits_on_device", lambda size: on_device)
    kmodel, model = pair()
    (expected, _), (got, _) = fit_both(kmodel, model, X, Y, batch_size=16, epochs=4, shuffle=False,
                                       steps_per_epoch=2)
    assert_histories_close(expected, got)
    assert got["loss"][1] > got["loss"][0]  # epoch 2 trained on the shifted second half, not the first


@ON_DEVICE_AND_FROM_HOST
def test_an_epoch_that_reaches_the_end_of_the_data_stops_there_with_a_warning(monkeypatch, on_device):
    monkeypatch.setattr(_sources, "fits_on_device", lambda size: on_device)
    kmodel, model = pair()
    (expected, k_warned), (got, warned) = fit_both(kmodel, model, X, Y, batch_size=16, epochs=2,
                                                   shuffle=False, steps_per_epoch=3)
    assert_histories_close(expected, got)  # epochs of 3 and 1 batches, then 3 and 1 again
    assert len(k_warned) == 1 and len(warned) == 1


def test_each_validation_starts_at_the_beginning_as_keras_resets_its_iterator():
    kmodel, model = pair()
    (expected, _), (got, _) = fit_both(kmodel, model, X[:32], Y[:32], batch_size=16, epochs=3, shuffle=False,
                                       validation_data=(X, Y), validation_steps=2)
    assert_histories_close(expected, got)  # val_loss on batches 0-1 every epoch, not 0-1, 2-3, 0-1


def test_a_reiterable_stream_with_steps_per_epoch_carries_on_like_arrays():
    class Batches:  # re-iterable, like a keras.utils.PyDataset
        def __iter__(self):
            return ((X[i : i + 16], Y[i : i + 16]) for i in range(0, 64, 16))

    kmodel, model = pair()
    fit = dict(epochs=3, steps_per_epoch=3, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = kmodel.fit(X, Y, batch_size=16, shuffle=False, **fit).history
        got = model.fit(Batches(), **fit).history
    assert_histories_close(expected, got)  # epochs of batches 0-2, 3, 0-2


def test_evaluate_and_predict_with_more_steps_than_data_use_each_sample_once():
    kmodel, model = pair()
    x, y = X[:50], Y[:50]  # 4 batches of 16: 16, 16, 16, 2
    for m in (kmodel, model):
        with pytest.warns(UserWarning, match="ran out"):
            assert m.evaluate(x, y, batch_size=16, steps=5, verbose=0) == pytest.approx(
                m.evaluate(x, y, batch_size=16, verbose=0), rel=1e-6
            )
    with pytest.warns(UserWarning, match="ran out"):
        out = model.predict(x, batch_size=16, steps=5, verbose=0)
    np.testing.assert_allclose(out, kmodel.predict(x, batch_size=16, verbose=0), rtol=1e-5, atol=1e-6)
    assert model.evaluate(x, y, batch_size=16, steps=2, verbose=0) == pytest.approx(
        model.evaluate(x[:32], y[:32], batch_size=16, verbose=0), rel=1e-6
    )


def test_a_one_shot_validation_generator_validates_every_epoch_on_the_same_batches():
    served = []

    def validation():
        for i in range(0, 64, 16):
            served.append(i)
            yield X[i : i + 16], Y[i : i + 16]

    _, by_generator = pair()
    _, by_arrays = pair()
    fit = dict(batch_size=16, epochs=3, shuffle=False, verbose=0)
    got = by_generator.fit(X, Y, validation_data=validation(), **fit).history
    expected = by_arrays.fit(X, Y, validation_data=(X, Y), **fit).history
    assert len(served) == 4  # read once, replayed after
    np.testing.assert_allclose(got["val_loss"], expected["val_loss"], rtol=1e-6)


def test_generator_batches_of_varying_sequence_length_train_fused_as_one_by_one():
    lengths = [5, 7, 3, 9, 7]

    def batches():
        rng = np.random.default_rng(0)
        for n in lengths:
            yield rng.normal(size=(8, n, 2)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")

    def model():
        x = dj.Input((None, 2), name="seq")
        m = dj.Model(x, layers.Dense(1)(layers.GlobalAveragePooling1D()(x)))
        m.set_weights([np.full((2, 1), 0.5, "float32"), np.zeros(1, "float32")])
        return m

    losses = []
    for per_call in (1, 4):
        m = model()
        m.compile("sgd", "mse", steps_per_execution=per_call)
        losses.append(m.fit(batches(), verbose=0).history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)


def test_class_weight_weighs_training_only_not_the_validation_split():
    labels = (Y > np.median(Y)).astype("float32")
    _, model = pair()
    model.compile(optimizers.SGD(0.0), "binary_crossentropy")  # no updates: val_loss is the start's
    history = model.fit(X, labels, batch_size=16, validation_split=0.25, class_weight={0: 1.0, 1: 5.0},
                        verbose=0).history
    unweighted = model.evaluate(X[48:], labels[48:], batch_size=16, verbose=0)
    assert history["val_loss"][0] == pytest.approx(unweighted, rel=1e-6)


def test_inputs_and_weights_in_the_forms_keras_accepts():
    _, model = pair(inputs=1)
    x1 = X[:, :1]
    model.compile(optimizers.SGD(0.0), "mse")
    flat = model.evaluate(x1[:, 0], Y, verbose=0)  # (n,) for Input(shape=(1,)): the axis is added
    assert flat == pytest.approx(model.evaluate(x1, Y, verbose=0))
    np.testing.assert_array_equal(model.predict(x1[:, 0], verbose=0), model.predict(x1, verbose=0))
    np.testing.assert_array_equal(model(x1[:, 0]), model(x1))  # and in apply, as Keras's model(x)
    w = np.linspace(0.1, 2.0, 64).astype("float32")
    assert model.evaluate(x1, Y, sample_weight=[w], verbose=0) == pytest.approx(
        model.evaluate(x1, Y, sample_weight=w, verbose=0)
    )
    assert model.fit(x1, Y, batch_size=np.int64(16), verbose=0).history["loss"]


def test_bad_data_is_reported_in_the_users_terms():
    _, model = pair()
    with pytest.raises(ValueError, match="validation_freq must be a positive int"):
        model.fit(X, Y, validation_split=0.25, validation_freq=0, verbose=0)
    with pytest.raises(ValueError, match="sample_weight is a scalar"):
        model.fit(X, Y, sample_weight=2.0, verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight for output 'out' has shape \(64, 3\).*\(samples,\)"):
        model.fit(X, Y, sample_weight=np.ones((64, 3)), verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight for output 'out' has shape \(32, 2\)"):
        model.fit(X, Y, validation_data=(X[:32], Y[:32], np.ones((32, 2))), verbose=0)
    with pytest.raises(ValueError, match="y 'out' is a scalar"):
        model.fit(X, 3.0, verbose=0)
    with pytest.raises(ValueError, match="x for input 'x' cannot be read as one array.*iter"):
        model.fit([(X[:16], Y[:16]), (X[16:20], Y[16:20])], verbose=0)
    with pytest.raises(ValueError, match=r"validation_data: the target for output 'out' has shape \(64, 2\)"):
        model.fit(X, Y, validation_data=(X, np.hstack([Y, Y])), verbose=0)

    def drifting():
        yield X[:16], Y[:16]
        yield X[16:32], np.hstack([Y, Y])[16:32]

    with pytest.raises(ValueError, match=r"batch of the data generator: the target for output 'out'"):
        model.fit(drifting(), verbose=0)

    x = dj.Input((4,), name="x")
    two = dj.Model(x, [layers.Dense(1, name="reg")(x), layers.Dense(1, activation="sigmoid", name="cls")(x)])
    two.compile("sgd", ["mse", "binary_crossentropy"])
    with pytest.raises(ValueError, match="sample_weight 'cls' has 10"):
        two.fit(X, [Y, Y > 0], sample_weight={"reg": np.ones(64), "cls": np.ones(10)}, verbose=0)
    with pytest.raises(ValueError, match=r"output 'cls' has shape \(64, 3\).*binary_crossentropy"):
        two.fit(X, [Y, np.zeros((64, 3))], verbose=0)


def test_a_keras_pydataset_is_shuffled_by_batch_and_told_when_epochs_begin_and_end():
    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.read, self.calls = [], []

        def __len__(self):
            return 4

        def __getitem__(self, i):
            self.read.append(i)
            return X[16 * i : 16 * (i + 1)], Y[16 * i : 16 * (i + 1)]

        def on_epoch_begin(self):
            self.calls.append("begin")

        def on_epoch_end(self):
            self.calls.append("end")

    _, model = pair()
    for shuffle in (False, True):
        data = Batches()
        model.fit(data, epochs=3, shuffle=shuffle, verbose=0)
        epochs = [data.read[1 + 4 * e : 5 + 4 * e] for e in range(3)]  # read[0]: the first batch, peeked
        assert all(sorted(order) == [0, 1, 2, 3] for order in epochs)  # every batch once an epoch
        assert (epochs == [[0, 1, 2, 3]] * 3) == (not shuffle)
        assert data.calls == ["begin", "end"] * 3


def test_a_shuffled_pass_spans_epochs_and_is_drawn_once(monkeypatch):
    plans = []
    epoch_plan = _sources.epoch_plan
    monkeypatch.setattr(_sources, "epoch_plan", lambda seed, *a: plans.append(seed) or epoch_plan(seed, *a))
    _, model = pair()
    model.fit(X, Y, batch_size=16, epochs=5, steps_per_epoch=2, verbose=0)
    assert plans == [(0, 0), (0, 4), (0, 8)]  # a pass of 4 batches per 2 epochs, keyed by its first step


def test_history_params_keep_steps_unknown_for_a_stream_of_unknown_length_as_keras():
    class Batches:
        def __iter__(self):
            return ((X[i : i + 16], Y[i : i + 16]) for i in range(0, 64, 16))

    _, model = pair()
    history = model.fit(Batches(), epochs=2, verbose=0)
    assert history.params == {"verbose": 0, "epochs": 2, "steps": None}
    assert len(history.history["loss"]) == 2


def test_a_sequence_with_only_len_and_getitem_is_a_data_set_read_by_index():
    class Sequence:  # no __iter__: Python's fallback iteration would never stop on its own
        def __len__(self):
            return 4

        def __getitem__(self, i):
            assert 0 <= i < 4, f"batch {i} read past the end"
            return X[16 * i : 16 * (i + 1)], Y[16 * i : 16 * (i + 1)]

    _, by_sequence = pair()
    _, by_arrays = pair()
    got = by_sequence.fit(Sequence(), epochs=2, shuffle=False, verbose=0).history["loss"]
    expected = by_arrays.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert by_sequence.evaluate(Sequence(), verbose=0) == pytest.approx(by_arrays.evaluate(X, Y, verbose=0))
    np.testing.assert_allclose(by_sequence.predict(Sequence(), verbose=0), by_arrays.predict(X, verbose=0))


def test_a_batch_size_far_above_the_data_costs_what_the_data_needs():
    """32 samples with batch_size=10**8: fit, evaluate and predict pad nothing (Keras stays flat too)."""
    import subprocess
    import sys

    script = """
import numpy as np, dagjax as dj
x = dj.Input((8,))
model = dj.Model(x, dj.layers.Dense(1)(dj.layers.BatchNormalization()(x)))
model.compile("sgd", "mse")
data, target = np.ones((32, 8), "float32"), np.ones((32, 1), "float32")
model.fit(data, target, batch_size=10**8, epochs=2, validation_split=0.25, verbose=0)
model.evaluate(data, target, batch_size=10**8, verbose=0)
assert model.predict(data, batch_size=10**8, verbose=0).shape == (32, 1)
# VmHWM is this process's own peak (ru_maxrss would carry the forking test process's over exec)
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    peak_mib = int(done.stdout.split()[-1]) / 1024
    assert peak_mib < 1024  # padded to 10**8 rows, one batch alone is 3 GiB


def test_a_batch_size_above_the_data_trains_as_one_batch_of_the_data():
    def trained(batch_size):
        x = dj.Input((3,))
        model = dj.Model(x, layers.Dense(1, name="out")(layers.BatchNormalization(name="bn")(x)))
        model.compile("sgd", "mse")
        data = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
        history = model.fit(data, data[:, :1], batch_size=batch_size, epochs=2, shuffle=False, verbose=0)
        return model.get_weights(), history.history["loss"]

    (exact, exact_loss), (huge, huge_loss) = trained(10), trained(4096)
    np.testing.assert_allclose(huge_loss, exact_loss, rtol=1e-6)
    for a, b in zip(exact, huge, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.array([["a", "b", "c"]] * 4), "<U1 values: models take numbers"),
        (np.array([[1, 2, 3]] * 4, dtype=object), "object values: models take numbers"),
        (np.ones((4, 3), complex), "complex values"),
    ],
)
def test_text_object_and_complex_inputs_are_refused_naming_the_input(bad, words):
    x = dj.Input((3,), name="features")
    model = dj.Model(x, layers.Dense(1)(x))
    model.compile("sgd", "mse")
    for run in (lambda: model.predict(bad, verbose=0), lambda: model.fit(bad, np.ones((4, 1)), verbose=0)):
        with pytest.raises(TypeError, match=f"x for input 'features' got .*{words}"):
            run()
