"""Hyperparameter search (``dagjax.tuners``): keras-tuner's semantics, mapped onto Optuna's distributions."""

import optuna
import pytest

from dagjax import tuners
from dagjax.tuners._objective import create_objective
from dagjax.tuners._space import Choice, Fixed, Float, Int


# ------------------------------------------------------------------ hyperparameters
def test_hyperparameters_follow_keras_tuner():
    hp = tuners.HyperParameters()
    assert hp.Int("units", 16, 128, step=16) == 16  # default: min_value
    assert hp.Int("units", 16, 128, step=16) == 16  # asked again: the same value
    with pytest.raises(ValueError, match="declared twice with different settings"):
        hp.Int("units", 8, 64)
    assert hp.Float("lr", 1e-4, 1e-2, sampling="log") == 1e-4
    assert hp.Float("drop", 0, 0.5, default=0.25) == 0.25
    assert hp.Choice("act", ["relu", "tanh"]) == "relu"
    assert hp.Choice("width", [3, 5], default=5) == 5
    assert hp.Boolean("bn") is False and hp.Fixed("epochs", 3) == 3
    assert hp.Choice("kind", ["mlp", "cnn"]) == "mlp"
    with hp.conditional_scope("kind", ["cnn"]):
        assert hp.Int("filters", 8, 64) is None  # registered, inactive
    with hp.conditional_scope("kind", "mlp"):
        assert hp.Int("layers", 1, 3) == 1
    assert hp.Int("depth", 1, 4, parent_name="kind", parent_values=["mlp"]) == 1
    assert hp.values == {"units": 16, "lr": 1e-4, "drop": 0.25, "act": "relu", "width": 5, "bn": False,
                         "epochs": 3, "kind": "mlp", "layers": 1, "depth": 1}
    assert hp.get("units") == hp["units"] == 16 and "units" in hp and "filters" not in hp
    assert [p.name for p in hp.space][-4:] == ["kind", "filters", "layers", "depth"]
    with pytest.raises(ValueError, match="currently inactive"):
        hp.get("filters")
    with pytest.raises(KeyError, match="does not exist"):
        hp.get("nope")
    with pytest.raises(ValueError, match="'missing' is not defined yet"), hp.conditional_scope("missing", 1):
        pass
    with pytest.raises(ValueError, match="in its own conditional scope"), hp.conditional_scope("kind", "mlp"):
        hp.Choice("kind", ["mlp", "cnn"])


@pytest.mark.parametrize("make, message", [
    (lambda: Int("n", 5, 1), "min_value 5 is above max_value 1"),
    (lambda: Int("n", 1, 5, step=1.5), "step must be an integer"),
    (lambda: Float("lr", 0.0, 1.0, sampling="log"), "needs min_value > 0"),
    (lambda: Float("lr", 1e-3, 1.0, sampling="reverse_log"), "sampling must be 'linear' or 'log'"),
    (lambda: Int("n", 1, 5, default=9), "default 9 is outside"),
    (lambda: Choice("c", ["a", 1]), "all of one type"),
    (lambda: Choice("c", ["a", "b"], default="z"), "default 'z' is not among"),
    (lambda: Fixed("f", object()), "must be JSON"),
])
def test_bad_hyperparameters_say_what_is_wrong(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def _drawn(spec, exhaustive=False):
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    spec.suggest(trial, exhaustive)
    return trial.distributions[spec.name]


def test_each_kind_maps_onto_an_optuna_distribution_without_warnings():
    """Steps fit the range exactly (no Optuna adjustment warning); multiplied steps become choices."""
    D = optuna.distributions
    assert _drawn(Int("n", 6, 13, step=3)) == D.IntDistribution(6, 12, step=3)  # 6, 9, 12
    assert _drawn(Int("n", 1, 1000, sampling="log")) == D.IntDistribution(1, 1000, log=True)
    assert _drawn(Int("b", 2, 32, step=2, sampling="log")).choices == (2, 4, 8, 16, 32)
    assert _drawn(Float("r", 0, 1, step=0.3)) == D.FloatDistribution(0, 0.9, step=0.3)
    assert _drawn(Float("lr", 1e-3, 10, step=10, sampling="log")).choices == (0.001, 0.01, 0.1, 1.0, 10.0)
    assert _drawn(Float("lr", 1e-4, 1e-2, sampling="log")) == D.FloatDistribution(1e-4, 1e-2, log=True)
    assert _drawn(Choice("c", ["a", "b"])) == D.CategoricalDistribution(("a", "b"))
    # Grid search: an unstepped range is cut into 10 values on its own scale.
    tenths = tuple(round(0.05 * k, 2) for k in range(10))
    assert _drawn(Float("d", 0, 0.45), exhaustive=True).choices == tenths
    assert _drawn(Int("n", 1, 1000, sampling="log"), exhaustive=True).choices == (
        1, 2, 5, 10, 22, 46, 100, 215, 464, 1000)


# ------------------------------------------------------------------ objectives
@pytest.mark.parametrize("name, direction", [
    ("val_accuracy", "max"), ("accuracy", "max"), ("acc", "max"), ("val_loss", "min"), ("loss", "min"),
    ("val_income_loss", "min"), ("mse", "min"), ("val_auc", "max"), ("precision", "max"),
    ("true_positives", "max"), ("false_negatives", "min"), ("weighted_mae", "min"),
    ("sparse_categorical_crossentropy", "min"),
])
def test_objective_directions_are_inferred_as_keras_tuner_does(name, direction):
    assert create_objective(name).direction == direction
