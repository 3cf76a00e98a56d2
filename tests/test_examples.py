"""The examples run and do what their docstrings say."""

import importlib.util
import pathlib

import jax
import numpy as np

import dagjax as dj

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_layer_example(capsys):
    example = load("custom_layer")
    example.main()
    assert "rbf (RBF)" in capsys.readouterr().out
    x = dj.Input((3,))
    model = dj.Model(x, example.RBF(4, gamma=2.0, name="features")(x))
    params, state = model.init(jax.random.key(0))
    centres = np.asarray(params["features"]["centres"])
    out, _ = model.apply(params, state, centres[:1])
    assert out.shape == (1, 4) and np.isclose(out[0, 0], 1.0)


def test_multi_output_example_learns(capsys):
    """The age / income / gender model: both the fit and the pure-loop losses fall every epoch."""
    curves = load("multi_output").main(samples=512, epochs=3)
    out = capsys.readouterr().out
    assert "val_loss:" in out and "pure loop loss:" in out and "income (Dense)" in out
    for name, losses in curves.items():
        assert len(losses) == 3 and all(b < a for a, b in zip(losses, losses[1:])), (name, losses)
    assert curves["val_loss"][-1] < 0.97 * curves["val_loss"][0]
    assert curves["pure_loss"][-1] < 0.95 * curves["pure_loss"][0]


def test_ensemble_example_fits_weights_that_beat_the_uniform_average(capsys):
    """Three digit classifiers, one barely trained: the fitted weights lower the test loss below uniform's."""
    results = load("ensemble").main(epochs=8)
    out = capsys.readouterr().out
    assert "fitted weights: wide" in out and "test   fitted: loss" in out
    assert results["fitted"]["loss"] < results["uniform"]["loss"]
    assert results["fitted"]["accuracy"] > 0.75 > results["linear"]["accuracy"]


def test_hyperparameter_search_example_finds_a_good_model_and_resumes(tmp_path, capsys):
    """Three trials of the digits search; a second run finds the study done and gives the same best model."""
    example = load("hyperparameter_search")
    first = example.main(max_trials=3, epochs=2, directory=str(tmp_path))
    assert len(first["trials"]) == 3 and first["test_accuracy"] > 0.8
    again = example.main(max_trials=3, epochs=2, directory=str(tmp_path))
    out = capsys.readouterr().out
    assert "Search complete: 3 of max_trials=3" in out and "Held-out accuracy of the best model" in out
    assert again["best"] == first["best"] and again["test_accuracy"] == first["test_accuracy"]
