"""``train_on_batch`` / ``test_on_batch`` / ``predict_on_batch`` against Keras 3, and against ``fit``."""

import logging

import jax
import keras
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import optimizers

RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 4)).astype("float32")
REG = RNG.normal(size=(24, 1)).astype("float32")
CLS = np.eye(3, dtype="float32")[RNG.integers(0, 3, 24)]
WEIGHTS = RNG.uniform(0.0, 2.0, 24).astype("float32")
COMPILE = dict(
    loss=["mse", "categorical_crossentropy"],
    loss_weights=[0.5, 1.0],
    metrics={"reg": ["mae"], "cls": ["accuracy"]},
)


def two_output(lib):
    """The same one-input / two-output graph in dagjax or Keras."""
    x = lib.Input((4,), name="x")
    h = lib.layers.Dense(5, activation="tanh", name="hidden")(x)
    reg = lib.layers.Dense(1, name="reg")(h)
    cls = lib.layers.Dense(3, activation="softmax", name="cls")(h)
    return lib.Model(x, [reg, cls])


def compiled_pair():
    kmodel, model = two_output(keras), two_output(dj)
    model.set_weights(kmodel.get_weights())
    kmodel.compile(keras.optimizers.SGD(0.1), **COMPILE)
    model.compile(optimizers.SGD(0.1), **COMPILE)
    return kmodel, model


def batch(i, size=8):
    rows = slice(size * i, size * (i + 1))
    return X[rows], [REG[rows], CLS[rows]]


def iterations(model) -> int:
    return int(optax.tree_utils.tree_get(model.opt_state, "iterations"))


def assert_same_weights(a: list, b: list, **tol) -> None:
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, **{"rtol": 1e-6, "atol": 1e-7, **tol})


def test_on_batch_methods_match_keras():
    kmodel, model = compiled_pair()
    calls = [  # (batch, sample_weight, return_dict); the last batch is smaller and not padded
        (batch(0), None, False),
        (batch(1), WEIGHTS[8:16], True),
        (batch(2), None, False),
        (batch(0, size=5), None, True),
    ]
    for (x, y), sample_weight, return_dict in calls:
        expected = kmodel.train_on_batch(x, y, sample_weight=sample_weight, return_dict=return_dict)
        got = model.train_on_batch(x, y, sample_weight=sample_weight, return_dict=return_dict)
        assert type(got) is type(expected)
        if return_dict:
            assert sorted(got) == sorted(expected)
            assert got == pytest.approx(expected, rel=1e-6)
        else:
            assert all(isinstance(v, float) for v in got)
            np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert_same_weights(model.get_weights(), kmodel.get_weights())
    assert iterations(model) == int(kmodel.optimizer.iterations.numpy()) == 4

    x, y = batch(1)
    np.testing.assert_allclose(model.test_on_batch(x, y), kmodel.test_on_batch(x, y), rtol=1e-6)
    expected = kmodel.test_on_batch(x, y, sample_weight=WEIGHTS[8:16], return_dict=True)
    assert model.test_on_batch(x, y, sample_weight=WEIGHTS[8:16], return_dict=True) == pytest.approx(expected)
    assert_same_weights(model.get_weights(), kmodel.get_weights())  # testing trains nothing
    expected, got = kmodel.predict_on_batch(x[:3]), model.predict_on_batch(x[:3])
    assert isinstance(got, list) and all(isinstance(v, np.ndarray) for v in got)
    assert [v.shape for v in got] == [(3, 1), (3, 3)]
    assert_same_weights(got, expected)


def test_single_output_without_metrics_returns_the_loss_as_a_float():
    def build(lib):
        x = lib.Input((4,))
        return lib.Model(x, lib.layers.Dense(3, activation="softmax")(x))

    kmodel, model = build(keras), build(dj)
    model.set_weights(kmodel.get_weights())
    labels = RNG.integers(0, 3, 8)
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}
    for lib_model, optimizer in ((kmodel, keras.optimizers.SGD(0.1)), (model, optimizers.SGD(0.1))):
        lib_model.compile(optimizer, "sparse_categorical_crossentropy")
    for _ in range(2):
        expected = kmodel.train_on_batch(X[:8], labels, class_weight=class_weight)
        got = model.train_on_batch(X[:8], labels, class_weight=class_weight)
        assert isinstance(got, float) and got == pytest.approx(expected, rel=1e-6)
    assert model.test_on_batch(X[:8], labels) == pytest.approx(kmodel.test_on_batch(X[:8], labels), rel=1e-6)
    assert_same_weights(model.get_weights(), kmodel.get_weights())


def test_train_on_batch_steps_equal_an_unshuffled_epoch_of_fit():
    stepped, fitted = two_output(dj), two_output(dj)
    fitted.set_weights(stepped.get_weights())
    for model in (stepped, fitted):
        model.compile(optimizers.SGD(0.1), **COMPILE)
    logs = [stepped.train_on_batch(*batch(i), return_dict=True) for i in range(3)]
    history = fitted.fit(X, [REG, CLS], batch_size=8, shuffle=False, epochs=1, verbose=0).history
    assert_same_weights(stepped.get_weights(), fitted.get_weights())
    assert iterations(stepped) == iterations(fitted) == 3
    for key, values in history.items():  # fit's epoch logs are the mean over its equal-sized batches
        assert np.mean([log[key] for log in logs]) == pytest.approx(values[0], rel=1e-5), key


def test_train_on_batch_and_fit_continue_from_each_other_as_in_keras():
    kmodel, model = compiled_pair()
    fit = dict(batch_size=8, shuffle=False, epochs=1, verbose=0)
    for lib_model in (kmodel, model):
        lib_model.fit(X[:16], [REG[:16], CLS[:16]], **fit)
        lib_model.train_on_batch(*batch(2))
        lib_model.fit(X[:16], [REG[:16], CLS[:16]], **fit)
        lib_model.train_on_batch(*batch(2))
    assert_same_weights(model.get_weights(), kmodel.get_weights(), rtol=1e-5)
    assert iterations(model) == int(kmodel.optimizer.iterations.numpy()) == 6


def test_the_same_batch_shape_reuses_the_compiled_programs(caplog):
    model = two_output(dj)
    model.compile(optimizers.SGD(0.1), **COMPILE)
    x, y = batch(0)

    def compiled() -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING), jax.log_compiles():
            model.train_on_batch(x, y)
            model.test_on_batch(x, y)
            model.predict_on_batch(x)
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling")]

    first = compiled()
    assert any("jit(train_one)" in m for m in first) and any("jit(eval_one)" in m for m in first)
    assert compiled() == []
    params = model.params
    model.train_on_batch(*batch(1))
    assert model.params is not params  # the new trees land on the model


def test_errors_are_the_ones_fit_gives():
    model = two_output(dj)
    x, y = batch(0)
    for method in (model.train_on_batch, model.test_on_batch):
        with pytest.raises(ValueError, match="compile"):
            method(x, y)
    model.compile("sgd", **COMPILE)
    for method in (model.train_on_batch, model.test_on_batch):
        with pytest.raises(ValueError, match="x 'x' has 8.*y 'reg' has 7"):
            method(x, [REG[:7], y[1]])
        with pytest.raises(ValueError, match=r"unknown outputs \['clss'\]"):
            method(x, {"reg": y[0], "clss": y[1]})
        with pytest.raises(ValueError, match=r"output 'cls' has shape \(8, 2\).*\(None, 3\)"):
            method(x, [y[0], y[1][:, :2]])
        with pytest.raises(ValueError, match="not a data generator"):
            method(iter([(x, y)]))
    with pytest.raises(ValueError, match=r"Input 'x' .* expected shape=\(None, 4\)"):
        model.predict_on_batch(x[:, :3])
    model.compile("sgd", metrics={"cls": ["accuracy"]})
    with pytest.raises(ValueError, match="No loss to train on"):
        model.train_on_batch(x, y)
