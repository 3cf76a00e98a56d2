"""A Sequential with no input shape builds on its first data, as Keras's does (the keras.io guides' habit)."""

import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from tests.keras_parity import random_weights


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(24, 3)).astype("float32"), rng.normal(size=(24, 1)).astype("float32")


def test_compile_then_fit_without_an_input_trains_as_keras_does():
    keras = pytest.importorskip("keras")
    x, y = data()
    reference = keras.Sequential([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    reference.build((None, 3))
    weights = random_weights(reference)
    reference.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", metrics=["mae"])

    model = dj.Sequential([layers.Dense(4, activation="relu"), layers.Dense(1)])
    model.compile(optimizer=dj.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
    assert model.compiled and model.output_names == [model.layers[-1].name]
    model.predict(x[:2], verbose=0)  # the first data builds it, and the compile takes effect
    assert model.input_shape == (None, 3) and model.fit_session is not None
    model.set_weights(weights)
    expected = reference.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    got = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    for key in ("loss", "mae"):
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)


@pytest.mark.parametrize("first_use", ["fit", "evaluate", "predict", "train_on_batch", "predict_on_batch"])
def test_every_entry_point_builds_a_sequential_on_first_data(first_use):
    x, y = data()
    model = dj.Sequential([layers.Dense(2), layers.Dense(1)])
    model.compile("adam", "mse")
    call = getattr(model, first_use)
    if first_use in ("fit", "evaluate"):
        call(x, y, verbose=0)
    elif first_use == "train_on_batch":
        call(x, y)
    else:
        call(x)
    assert model.input_shape == (None, 3)
    assert model.count_params() == 3 * 2 + 2 + 2 + 1


def test_input_shape_on_the_first_layer_gives_the_input_with_keras_warning():
    with pytest.warns(UserWarning, match=r"Do not pass an `input_shape`/`input_dim` argument"):
        model = dj.Sequential([layers.Dense(4, input_shape=(7,)), layers.Dense(1)])
    assert model.input_shape == (None, 7) and model.output_shape == (None, 1)
    with pytest.warns(UserWarning, match="input_dim"):
        assert dj.Sequential([layers.Dense(2, input_dim=5)]).input_shape == (None, 5)


def test_data_without_a_shape_still_asks_for_one():
    model = dj.Sequential([layers.Dense(2)])
    model.compile("adam", "mse")
    batches = ((np.ones((4, 3), "float32"), np.ones((4, 2), "float32")) for _ in range(2))
    with pytest.raises(ValueError, match=r"no input shape yet.*Input\(shape=...\).*build"):
        model.fit(batches, verbose=0)


def test_integer_data_builds_an_integer_input_for_a_first_embedding():
    model = dj.Sequential([layers.Embedding(20, 4), layers.GlobalAveragePooling1D(), layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(np.arange(24).reshape(4, 6) % 20, np.zeros((4, 1)), verbose=0)
    assert model.inputs[0].dtype == np.int32 and model.count_params() == 20 * 4 + 5
