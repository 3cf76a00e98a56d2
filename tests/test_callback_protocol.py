"""The callback protocol against Keras 3's: which hooks run, in what order, with which logs.

Each test runs the same small two-input / two-output model in Keras and in
dagjax with a recording callback, and compares what both recorded: the hook,
its epoch or batch index, the sorted log keys and whether ``logs`` was ``None``.
A recording callback overrides the batch hooks, so dagjax runs those fits one
step per call; the epoch-only recorder checks the fused path.
"""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import callbacks, optimizers

RNG = np.random.default_rng(0)
N = 20  # batches of 8: two full and a partial one
XA = RNG.normal(size=(N, 5)).astype("float32")
XB = RNG.normal(size=(N, 3)).astype("float32")
Y1 = RNG.normal(size=(N, 1)).astype("float32")
Y2 = (RNG.random((N, 1)) > 0.5).astype("float32")
X, Y = [XA, XB], [Y1, Y2]

ALL_HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
)  # fmt: skip
EPOCH_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end")


def _hook(name, stop_at):
    if "batch" in name or "epoch" in name:

        def hook(self, index, logs=None):
            self.record(name, index, logs)
            if (name, index) in stop_at:
                setattr(self.model, stop_at[name, index], True)

    else:

        def hook(self, logs=None):
            self.record(name, None, logs)
            if (name, None) in stop_at:
                setattr(self.model, stop_at[name, None], True)

    return hook


def recorder(lib, hooks=ALL_HOOKS, stop_at=None):
    """A callback of ``lib`` overriding ``hooks``; ``stop_at[(hook, index)]`` names a flag it sets there."""
    base = keras.callbacks.Callback if lib is keras else callbacks.Callback

    def __init__(self):
        base.__init__(self)
        self.calls, self.epoch_types, self.params_seen = [], [], []

    def record(self, name, index, logs):
        self.calls.append((name, index, None if logs is None else tuple(sorted(logs))))
        if name == "on_epoch_end":
            self.epoch_types.append({k: type(v) for k, v in logs.items()})
        assert self.model is not None

    def set_params(self, params):
        base.set_params(self, params)
        self.params_seen.append(dict(params))

    namespace = {name: _hook(name, stop_at or {}) for name in hooks}
    namespace.update(__init__=__init__, record=record, set_params=set_params)
    return type("Recorder", (base,), namespace)()


def model(lib):
    a, b = lib.Input((5,), name="a"), lib.Input((3,), name="b")
    h = lib.layers.concatenate([lib.layers.Dense(6, activation="tanh", name="hidden")(a), b])
    m = lib.Model([a, b], [lib.layers.Dense(1, name="o1")(h), lib.layers.Dense(1, "sigmoid", name="o2")(h)])
    sgd = keras.optimizers.SGD(0.01) if lib is keras else optimizers.SGD(0.01)
    m.compile(sgd, loss=["mse", "binary_crossentropy"], metrics=[["mae"], ["accuracy"]])
    return m


def batches(n_batches=None):
    """``(x, y)`` batches of 8: endless, or the first ``n_batches`` of one pass."""

    def endless():
        while True:
            for i in range(0, N, 8):
                yield [XA[i : i + 8], XB[i : i + 8]], [Y1[i : i + 8], Y2[i : i + 8]]

    items = endless()
    return items if n_batches is None else (next(items) for _ in range(n_batches))


def record_both(run, hooks=ALL_HOOKS, stop_at=None):
    """Run ``run(model, callback)`` in Keras and dagjax; the two recorders."""
    out = []
    for lib in (keras, dj):
        callback = recorder(lib, hooks, stop_at)
        run(model(lib), callback)
        out.append(callback)
    return out


FIT = dict(batch_size=8, epochs=3, verbose=0)
SCENARIOS = {
    "validation_data": lambda m, c: m.fit(X, Y, validation_data=(X, Y), callbacks=[c], **FIT),
    "validation_freq_2": lambda m, c: m.fit(
        X, Y, validation_data=(X, Y), validation_freq=2, callbacks=[c], **FIT
    ),
    "validation_freq_list": lambda m, c: m.fit(
        X, Y, validation_data=(X, Y), validation_freq=[1, 3], callbacks=[c], **FIT
    ),
    "validation_split": lambda m, c: m.fit(X, Y, validation_split=0.25, callbacks=[c], **FIT),
    "steps_per_epoch": lambda m, c: m.fit(
        X, Y, batch_size=4, epochs=2, steps_per_epoch=2, callbacks=[c], verbose=0
    ),  # epoch 2 carries on in the pass epoch 1 started
    "initial_epoch": lambda m, c: m.fit(X, Y, initial_epoch=1, callbacks=[c], **FIT),
    "no_epoch_left": lambda m, c: m.fit(X, Y, initial_epoch=3, callbacks=[c], **FIT),
    "generator": lambda m, c: m.fit(
        batches(), steps_per_epoch=3, epochs=2, validation_data=batches(), validation_steps=2,
        callbacks=[c], verbose=0,
    ),  # fmt: skip
    "evaluate": lambda m, c: m.evaluate(X, Y, batch_size=8, callbacks=[c], verbose=0),
    "evaluate_dict": lambda m, c: m.evaluate(X, Y, batch_size=8, callbacks=[c], verbose=0, return_dict=True),
    "evaluate_steps": lambda m, c: m.evaluate(batches(), steps=2, callbacks=[c], verbose=0),
    "predict": lambda m, c: m.predict(X, batch_size=8, callbacks=[c], verbose=0),
    "predict_steps": lambda m, c: m.predict(((x,) for x, _ in batches()), steps=2, callbacks=[c], verbose=0),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_hook_sequence_matches_keras(scenario):
    expected, got = record_both(SCENARIOS[scenario])
    assert got.calls == expected.calls
    assert got.params_seen == expected.params_seen
    assert got.epoch_types == expected.epoch_types  # Python floats
    assert all(logs is not None for _, _, logs in got.calls)  # Keras hands every hook a dict


def test_epoch_hooks_alone_match_keras_on_the_fused_path():
    run = lambda m, c: m.fit(X, Y, validation_data=(X, Y), validation_freq=2, callbacks=[c], **FIT)
    expected, got = record_both(run, EPOCH_HOOKS)
    assert got.calls == expected.calls


@pytest.mark.parametrize(
    "stop_at",
    [
        {("on_train_batch_end", 1): "stop_training"},  # the epoch ends there; validation still runs
        {("on_epoch_end", 0): "stop_training"},
        {("on_test_batch_end", 0): "stop_evaluating"},  # each validation stops after one batch
        {("on_test_begin", None): "stop_evaluating"},
    ],
    ids=["batch_end", "epoch_end", "stop_evaluating", "stop_evaluating_at_begin"],
)
def test_stopping_matches_keras(stop_at):
    run = lambda m, c: m.fit(X, Y, validation_data=(X, Y), callbacks=[c], **FIT)
    expected, got = record_both(run, stop_at=stop_at)
    assert got.calls == expected.calls


@pytest.mark.parametrize("hook", ["on_train_begin", "on_epoch_begin"])
def test_stop_training_from_a_begin_hook_runs_one_batch_as_keras(hook):
    """Keras checks ``stop_training`` after each batch: set before the first, one batch still runs.

    The recorder overrides no batch hook, so dagjax runs the epoch on its fused path.
    """
    steps = []

    def run(m, c):
        m.fit(X, Y, callbacks=[c], **FIT)
        steps.append(int(np.asarray(m.optimizer.iterations)))

    stop_at = {(hook, 0 if "epoch" in hook else None): "stop_training"}
    expected, got = record_both(run, EPOCH_HOOKS, stop_at)
    assert got.calls == expected.calls
    assert steps == [1, 1]


def test_stop_evaluating_and_stop_predicting_match_keras():
    """``model.stop_evaluating`` / ``model.stop_predicting`` end evaluate / predict after the batch."""
    stop_at = {("on_test_batch_end", 0): "stop_evaluating", ("on_predict_batch_end", 1): "stop_predicting"}
    results = []

    def run(m, c):
        m.set_weights(weights)
        results.append((m.evaluate(X, Y, batch_size=8, callbacks=[c], verbose=0, return_dict=True),
                        m.predict(X, batch_size=8, callbacks=[c], verbose=0)))  # fmt: skip

    weights = model(keras).get_weights()
    expected, got = record_both(run, stop_at=stop_at)
    assert got.calls == expected.calls
    (k_logs, k_pred), (d_logs, d_pred) = results
    np.testing.assert_allclose(d_logs["loss"], k_logs["loss"], rtol=1e-5)
    for k, d in zip(k_pred, d_pred):
        assert d.shape == k.shape == (16, 1)
        np.testing.assert_allclose(d, k, rtol=1e-5, atol=1e-6)


def test_predict_batch_outputs_match_keras():
    """``logs["outputs"]``: device arrays in the output structure, the last batch without padding rows."""
    seen = {keras: [], dj: []}
    for lib in (keras, dj):
        base = keras.callbacks.Callback if lib is keras else callbacks.Callback

        class Outputs(base):
            def on_predict_batch_end(self, batch, logs=None, lib=lib):
                outputs = logs["outputs"]
                seen[lib].append((type(outputs), [(type(v), v.shape) for v in outputs]))

        model(lib).predict(X, batch_size=8, callbacks=[Outputs()], verbose=0)
    assert seen[dj] == seen[keras]
    assert seen[dj][-1][1][0][1] == (4, 1)
    assert issubclass(seen[dj][0][1][0][0], jax.Array)


def test_logs_a_callback_changes_stay_in_that_hook_call_as_keras():
    """Keras hands each hook call a copy: a key added at epoch end reaches the next callbacks (History)
    but not ``on_train_end``; one added at ``on_test_end`` does not reach ``evaluate``'s result."""
    seen = {}
    for lib in (keras, dj):
        base = keras.callbacks.Callback if lib is keras else callbacks.Callback

        class Adds(base):
            def on_epoch_end(self, epoch, logs=None):
                logs["extra"] = 1.0

            def on_test_end(self, logs=None):
                logs["extra"] = 1.0

            def on_train_end(self, logs=None, lib=lib):
                seen[lib] = sorted(logs)

        m = model(lib)
        history = m.fit(X, Y, callbacks=[Adds()], **FIT).history
        result = m.evaluate(X, Y, callbacks=[Adds()], verbose=0, return_dict=True)
        seen[lib] = (seen[lib], sorted(history), sorted(result))
    assert seen[dj] == seen[keras]
    assert "extra" in seen[dj][1] and "extra" not in seen[dj][0] and "extra" not in seen[dj][2]


def test_on_batch_methods_call_no_hooks_as_keras():
    """``train_on_batch`` / ``test_on_batch`` / ``predict_on_batch`` take no callbacks and run none."""

    def run(m, c):
        m.fit(X, Y, callbacks=[c], **FIT)
        before = len(c.calls)
        m.train_on_batch(X, Y)
        m.test_on_batch(X, Y)
        m.predict_on_batch(X)
        assert len(c.calls) == before

    expected, got = record_both(run)
    assert got.calls == expected.calls


def test_a_spent_generator_of_unknown_length_differs_only_by_keras_unpaired_begin():
    """Keras calls ``on_*_batch_begin`` once more before it finds the generator spent (BUILD_NOTES)."""
    scenarios = [
        lambda m, c: m.fit(batches(3), epochs=1, callbacks=[c], verbose=0),
        lambda m, c: m.evaluate(batches(3), callbacks=[c], verbose=0),
        lambda m, c: m.predict(((x,) for x, _ in batches(3)), callbacks=[c], verbose=0),
    ]
    for run in scenarios:
        expected, got = record_both(run)
        calls = enumerate(expected.calls)
        dangling = [i for i, (name, index, _) in calls if name.endswith("batch_begin") and index == 3]
        assert len(dangling) == 1
        assert got.calls == [call for i, call in enumerate(expected.calls) if i != dangling[0]]
        assert got.params_seen == expected.params_seen == [{"verbose": 0, "epochs": 1, "steps": None}]
