"""Tuners with ``population=K``: trials asked for K at a time and trained as one program per group."""

import numpy as np
import optax
import optuna
import pytest
from sklearn.datasets import load_digits

import dagjax as dj
from dagjax import layers, tuners
from dagjax.tuners import _batches, _population

State = optuna.trial.TrialState


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.data[:240] / 16).astype("float32"), data.target[:240].astype("int32")


def mlp(units, rate, optimizer):
    inp = dj.Input((64,))
    h = layers.Dropout(rate)(layers.Dense(units, activation="relu")(inp))
    model = dj.Model(inp, layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def build_rates(hp):
    lr = hp.Float("lr", 1e-3, 1e-1, sampling="log")
    return mlp(16, hp.Float("dropout", 0.0, 0.5), dj.optimizers.Adam(lr))


def build_units(hp):
    lr = hp.Float("lr", 1e-3, 1e-1, sampling="log")
    return mlp(hp.Choice("units", [8, 16]), 0.1, dj.optimizers.Adam(lr))


@pytest.fixture
def trained(monkeypatch):
    """``(size, reused)`` of each population a search trains (reused: an earlier batch's program)."""
    seen = []
    real = _batches.population_of

    def spy(models, hyperparams, known=None):
        seen.append((len(models), known is not None))
        return real(models, hyperparams, known)

    monkeypatch.setattr(_batches, "population_of", spy)
    return seen


def search(tmp_path, build, population, x, y, name, **kwargs):
    tuner = tuners.RandomSearch(build, objective="val_loss", max_trials=4, seed=0, directory=tmp_path,
                                project_name=name, population=population, **kwargs)
    tuner.search(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0)
    return tuner


def test_four_trials_train_as_one_program_and_score_as_one_at_a_time(tmp_path, digits, trained):
    x, y = digits
    together = search(tmp_path, build_rates, 4, x, y, "together")
    assert trained == [(4, False)]
    alone = search(tmp_path, build_rates, 1, x, y, "alone")
    assert trained == [(4, False)]  # population=1 runs the sequential path
    for a, b in zip(together.study.trials, alone.study.trials, strict=True):
        assert a.state == b.state == State.COMPLETE and a.params == b.params
        np.testing.assert_allclose(a.value, b.value, rtol=1e-4)
        assert list(a.intermediate_values) == [1, 2]
    # a later batch on an earlier batch's programs: see the raw optax test below
    best = together.get_best_models(1)[0]  # the saved best epoch of its member
    x_val, y_val = x[180:], y[180:]
    value = best.evaluate(x_val, y_val, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(value, together.study.best_value, rtol=1e-4)


def test_shape_changing_hyperparameters_split_trials_into_groups(tmp_path, digits, trained):
    x, y = digits
    tuner = search(tmp_path, build_units, 4, x, y, "units")
    units = [t.params["units"] for t in tuner.study.trials]
    sizes = [size for size, _ in trained]
    sizes += [1] * (4 - sum(sizes))  # a group of one trains alone
    assert sorted(sizes) == sorted(np.unique(units, return_counts=True)[1])
    assert len(set(units)) == 2 and all(t.state == State.COMPLETE for t in tuner.study.trials)


def test_raw_optax_trials_differing_in_numbers_train_as_one_program(tmp_path, digits, trained):
    x, y = digits
    build = lambda hp: mlp(8, 0.0, optax.adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")))
    together = search(tmp_path, build, 2, x, y, "optax")
    assert trained == [(2, False), (2, True)]
    alone = search(tmp_path, build, 1, x, y, "optax_alone")
    for a, b in zip(together.study.trials, alone.study.trials, strict=True):
        assert a.state == b.state == State.COMPLETE and a.params == b.params
        np.testing.assert_allclose(a.value, b.value, rtol=1e-4)
    rules = [optax.adam(1e-2), optax.sgd(1e-2), optax.adam(1e-3), optax.sgd(1e-3, momentum=0.9)]
    groups, _ = _population.plan([mlp(8, 0.0, rule) for rule in rules])
    assert sorted(g.indices for g in groups) == [[0, 2], [1], [3]]  # only numbers may differ in a group


def _separable(n=256):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int32")


def build_logistic(hp):
    inp = dj.Input((4,))
    model = dj.Model(inp, layers.Dense(2, activation="softmax")(inp))
    optimizer = dj.optimizers.SGD(hp.Choice("lr", [0.0, 1.0]))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def test_a_pruned_member_stops_while_the_others_finish(tmp_path, trained):
    x, y = _separable()
    tuner = tuners.GridSearch(build_logistic, objective="loss", directory=tmp_path, population=2,
                              pruner=optuna.pruners.ThresholdPruner(upper=0.5))
    tuner.search(x, y, epochs=3, batch_size=32, verbose=0)
    assert trained == [(2, False)]
    by_lr = {t.params["lr"]: t for t in tuner.study.trials}
    assert set(by_lr) == {0.0, 1.0} and len(tuner.study.trials) == 2
    assert by_lr[0.0].state == State.PRUNED and list(by_lr[0.0].intermediate_values) == [1]
    assert by_lr[1.0].state == State.COMPLETE and list(by_lr[1.0].intermediate_values) == [1, 2, 3]


@pytest.mark.parametrize("population", [0, -1, 2.0, True])
def test_population_below_one_is_refused(tmp_path, population):
    with pytest.raises(ValueError, match="population is how many trials train together"):
        tuners.RandomSearch(build_rates, objective="val_loss", directory=tmp_path, population=population)
