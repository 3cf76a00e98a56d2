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
