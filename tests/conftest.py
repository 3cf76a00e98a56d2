"""Test setup: Keras (for parity tests) runs on the JAX backend, on the CPU."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

import dagjax as dj  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_names():
    """Each test starts with Keras-style auto names from scratch."""
    dj.clear_session()
    yield


dj.config.lowering.measure = False  # tests never time lowerings unless they ask (tests/test_lowering*.py)
