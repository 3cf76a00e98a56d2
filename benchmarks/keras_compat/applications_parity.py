"""``dagjax.applications`` against ``keras.applications``: names, weight paths, outputs from the same weights.

    PYTHONPATH=. .venv/bin/python benchmarks/keras_compat/applications_parity.py

Too slow for the test suite (Keras initializes every weight eagerly: ~20 s here), so it is run
by hand; BUILD_NOTES.md records its result.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import dagjax as dj  # noqa: E402

CASES = {
    "VGG19": dict(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg"),
    "MobileNet": dict(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=7),
    "Xception": dict(input_shape=(71, 71, 3), weights=None, classes=5),
}

for name, kwargs in CASES.items():
    theirs = getattr(keras.applications, name)(**kwargs)
    ours = getattr(dj.applications, name)(**kwargs)
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers], name
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights], name
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, *kwargs["input_shape"])).astype("float32")
    diff = np.abs(np.asarray(ours(x)) - np.asarray(theirs(x))).max()
    print(f"{name}: {len(ours.layers)} layers, {len(ours.weights)} weights, names and paths equal; "
          f"max |output difference| {diff:.2e}")
    assert diff < 1e-4, name
