"""Real Keras code on dagjax, with only its imports rewritten: the quick examples of the keras.io guides and
of Deep Learning with Python's chapter 7 that ``benchmarks/keras_compat`` ports (the whole sets run there,
by hand, as the measure BUILD_NOTES.md records; these fit the suite's time budget)."""

import pathlib
import sys

import pytest

COMPAT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "keras_compat"
sys.path.insert(0, str(COMPAT.parent))

from keras_compat.run_guides import run_one  # noqa: E402

QUICK = [  # each under 0.7 s here with measuring off (the suite's setting)
    "guides/functional_api_03_save_load.py",
    "guides/functional_api_04_encoder_autoencoder.py",
    "guides/functional_api_06_ensemble.py",
    "guides/functional_api_09_shared_layers.py",
    "guides/functional_api_11_custom_dense.py",
    "guides/functional_api_12_custom_layer_config.py",
    "guides/functional_api_14_custom_rnn_in_functional.py",
    "book/ed1_05_residual_connections.py",
]


@pytest.mark.parametrize("example", QUICK)
def test_keras_example_runs_unchanged_but_its_imports(example):
    assert run_one(COMPAT / example, on_keras=False, verbose=False) is None
