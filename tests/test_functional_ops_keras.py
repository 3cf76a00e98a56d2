"""Keras 3's own functional-model tests that use ops on symbolic tensors, run on dagjax.

Ported from ``keras/src/models/functional_test.py`` (Keras 3.15) with ``Functional`` read as
``dj.Model`` and Keras's test-case asserts as plain ones; each keeps its Keras name. Left out:
the parts that check Keras's own error texts, and ``test_input_dict_with_extra_field`` (Keras
warns and drops an unknown input key; dagjax refuses it, naming the key).
"""

import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.layers import Input


def test_basic_flow_multi_input():
    input_a = Input(shape=(3,), batch_size=2, name="input_a")
    input_b = Input(shape=(3,), batch_size=2, name="input_b")
    x = input_a + input_b
    x = layers.Dense(5)(x)
    outputs = layers.Dense(4)(x)
    model = dj.Model([input_a, input_b], outputs, name="basic")
    model.summary()
    assert model.name == "basic"

    in_val = [np.random.random((2, 3)), np.random.random((2, 3))]
    assert model(in_val).shape == (2, 4)

    input_a_2 = Input(shape=(3,), batch_size=2, name="input_a_2")
    input_b_2 = Input(shape=(3,), batch_size=2, name="input_b_2")
    assert model([input_a_2, input_b_2]).shape == (2, 4)


def test_scalar_input():
    input_a = Input(shape=(3,), batch_size=2, name="input_a")
    input_b = Input(shape=(), batch_size=2, name="input_b")
    outputs = input_a + input_b[:, None]
    model = dj.Model([input_a, input_b], outputs)
    model.summary()
    np.testing.assert_allclose(model([np.zeros((2, 3)), np.ones((2,))]), np.ones((2, 3)))


def test_basic_flow_dict_io():
    input_a = Input(shape=(3,), batch_size=2, name="a")
    input_b = Input(shape=(3,), batch_size=2, name="b")
    x = input_a + input_b
    x = layers.Dense(5)(x)
    outputs = layers.Dense(4)(x)
    with pytest.raises(TypeError, match="must be symbolic tensors"):
        dj.Model({"a": "input_a", "b": input_b}, outputs)
    with pytest.raises(TypeError, match="must be symbolic tensors"):
        dj.Model({"a": input_a, "b": input_b}, "outputs")
    model = dj.Model({"a": input_a, "b": input_b}, outputs)

    assert model({"a": np.random.random((2, 3)), "b": np.random.random((2, 3))}).shape == (2, 4)
    in_val = {"a": Input(shape=(3,), batch_size=2), "b": Input(shape=(3,), batch_size=2)}
    assert model(in_val).shape == (2, 4)


def test_layer_getters():
    # Mixing ops and layers: the ops are operations, not layers.
    input_a = Input(shape=(3,), batch_size=2, name="input_a")
    input_b = Input(shape=(3,), batch_size=2, name="input_b")
    x = input_a + input_b
    x = layers.Dense(5, name="dense_1")(x)
    outputs = layers.Dense(4, name="dense_2")(x)
    model = dj.Model([input_a, input_b], outputs)

    assert len(model.layers) == 4
    assert len(model.operations) == 5
    assert model.get_layer(index=0).name == "input_a"
    assert model.get_layer(index=1).name == "input_b"
    assert model.get_layer(index=2).name == "dense_1"
    assert model.get_layer(index=3).name == "dense_2"
    assert model.get_layer(name="dense_1").name == "dense_1"


def test_passing_inputs_by_name():
    input_a = Input(shape=(3,), batch_size=2, name="input_a")
    input_b = Input(shape=(3,), batch_size=2, name="input_b")
    x = input_a + input_b
    x = layers.Dense(5)(x)
    outputs = layers.Dense(4)(x)
    model = dj.Model([input_a, input_b], outputs)

    in_val = {"input_a": np.random.random((2, 3)), "input_b": np.random.random((2, 3))}
    assert model(in_val).shape == (2, 4)
    input_a_2 = Input(shape=(3,), batch_size=2, name="input_a_2")
    input_b_2 = Input(shape=(3,), batch_size=2, name="input_b_2")
    assert model({"input_a": input_a_2, "input_b": input_b_2}).shape == (2, 4)


def test_dtype_standardization():
    float_input = Input(shape=(2,), dtype="float16")
    int_input = Input(shape=(2,), dtype="int32")
    float_output = float_input + 2
    int_output = int_input + 2
    model = dj.Model((float_input, int_input), (float_output, int_output))
    float_data, int_data = model((np.ones((2, 2)), np.ones((2, 2))))
    assert float_data.dtype == np.float16
    assert int_data.dtype == np.int32


def _assert_config_round_trips(model):
    """Keras's ``run_class_serialization_test``: config -> model -> the same config."""
    config = model.get_config()
    assert dj.Model.from_config(config).get_config() == config


def test_serialization():
    # Test model that includes floating ops
    input_a = Input(shape=(3,), batch_size=2, name="input_a")
    input_b = Input(shape=(3,), batch_size=2, name="input_b")
    x = input_a + input_b
    x = layers.Dense(5, name="middle")(x)
    output_a = layers.Dense(4, name="output_a")(x)
    output_b = layers.Dense(4, name="output_b")(x)
    _assert_config_round_trips(dj.Model([input_a, input_b], [output_a, output_b], name="func"))

    # Test model with dict i/o
    input_a = Input(shape=(3,), batch_size=2, name="a")
    input_b = Input(shape=(3,), batch_size=2, name="b")
    x = input_a + input_b
    x = layers.Dense(5)(x)
    outputs = layers.Dense(4)(x)
    _assert_config_round_trips(dj.Model({"a": input_a, "b": input_b}, outputs))

    # Test model with unmodified input as output
    input_a = Input(shape=(3,), batch_size=2, name="a")
    input_b = Input(shape=(3,), batch_size=2, name="b")
    output_a = input_a * 2
    output_b = input_b
    _assert_config_round_trips(dj.Model({"a": input_a, "b": input_b}, {"a": output_a, "b": output_b}))

    # Test model with unused input
    input_a = Input(shape=(3,), batch_size=2, name="a")
    input_b = Input(shape=(3,), batch_size=2, name="b")
    output_a = input_a * 2
    _assert_config_round_trips(dj.Model({"a": input_a, "b": input_b}, output_a))


def test_unmodified_inputs():
    i1 = Input((2,), name="input1")
    i2 = Input((2,), name="input2")
    o1 = i1 * 2
    o2 = i2
    model = dj.Model({"input1": i1, "input2": i2}, {"output1": o1, "output2": o2})

    out = model({"input1": np.ones((2, 2)), "input2": np.zeros((2, 2))})
    np.testing.assert_allclose(out["output1"], np.ones((2, 2)) * 2)
    np.testing.assert_allclose(out["output2"], np.zeros((2, 2)))

    out_symbolic = model({"input1": Input((2,)), "input2": Input((2,))})
    assert isinstance(out_symbolic, dict)
    assert out_symbolic["output1"].shape == (None, 2)
    assert out_symbolic["output2"].shape == (None, 2)


def test_unused_inputs():
    i1 = Input((2,), name="input1")
    i2 = Input((2,), name="input2")
    o1 = i1 * 2
    model = dj.Model({"input1": i1, "input2": i2}, o1)

    out = model({"input1": np.ones((2, 2)), "input2": np.zeros((2, 2))})
    np.testing.assert_allclose(out, np.ones((2, 2)) * 2)
    assert model({"input1": Input((2,)), "input2": Input((2,))}).shape == (None, 2)


def test_disconnected_output():
    i1 = Input((2,), name="input1")
    i2 = Input((2,), name="input2")
    o1 = i1 * 2
    o2 = i2 * 3
    with pytest.raises(ValueError, match="Graph disconnected: layer 'multiply_1' needs input 'input2'"):
        dj.Model(i1, {"output1": o1, "output2": o2})
