"""Ops on symbolic tensors as graph nodes: models of them init, apply, fit, summarise, plot and
round-trip (config, clone, model files) with their constants; misuse fails early and says why."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dagjax as dj
from dagjax import ops
from dagjax.io._arrays import CheckpointError
from dagjax.io._keras_config import from_keras
from dagjax.layers import LayerInputError


def _constants_model():
    """Ops taking every kind of constant a file records: numbers, slices, None, Ellipsis, arrays, lists."""
    x = dj.Input((3, 4), name="x")
    ids = dj.Input((3,), dtype="int32", name="ids")
    h = dj.layers.Dense(4, name="dense")(x * 2 - 1)
    parts = ops.split(h, [1], axis=1)  # two outputs of one node
    picked = ops.take(parts[1], [0, 1], axis=1) + np.arange(4, dtype="float32")
    sliced = h[:, None, ..., ::2] ** 2
    hot = ops.one_hot(ids, 4, dtype="float16")
    joined = ops.concatenate([ops.reshape(picked, (-1, 8)), ops.cast(hot[:, 0], "float32")], axis=-1)
    values, _ = ops.top_k(ops.where(joined > 0, joined, 0.0), 3)
    return dj.Model([x, ids], {"values": values, "sliced": sliced, "mean": ops.mean(-abs(h), axis=(1, 2))})


@pytest.fixture(scope="module")
def constants_model():
    dj.clear_session()
    model = _constants_model()
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(2, 3, 4)).astype("float32"), rng.integers(0, 4, (2, 3)).astype("int32")]
    return model, inputs


def _outputs(model, inputs):
    """Outputs of ``apply`` run op by op (no compile: each op's program is cached across these models)."""
    return model.apply(model.params, model.state, inputs)[0]


def _assert_same(a, b):
    for key in a:
        assert a[key].dtype == b[key].dtype
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), rtol=1e-6)


def test_operators_record_nodes_with_inferred_shapes():
    x = dj.Input((3,), name="x")
    y = dj.Input((5, 3), name="y")
    added = x + 1
    assert added.shape == (None, 3) and added.name == "add"
    assert (2 - x).node.args[0] == 2
    assert (x[:, None] * y).shape == (None, 5, 3)
    assert (y @ ops.transpose(y, (0, 2, 1))).shape == (None, 5, 5)
    assert (x > 0).dtype == np.bool_ and (~(x > 0)).dtype == np.bool_
    assert (np.ones(3, "float32") + x).name.startswith("add")  # NumPy defers to the symbolic tensor
    assert (jnp.ones(3) * x).name.startswith("multiply")
    assert ops.sum(y, axis=0).shape == (5, 3)  # a reduction over the batch dim
    assert x.reshape((-1, 3, 1)).shape == (None, 3, 1) and round(x).name == "round"


def test_ops_on_traced_arrays_compute_without_recording_nodes():
    assert float(jax.jit(lambda a: ops.sum(ops.relu(a) * 2))(jnp.array([-1.0, 2.0]))) == 4.0


def test_ops_are_nodes_but_not_layers(constants_model, capsys):
    model, _ = constants_model
    assert [layer.name for layer in model.layers] == ["x", "dense", "ids"]  # Keras's order: by depth
    ops_in_graph = [op for op in model.operations if isinstance(op, ops.Operation)]
    assert {op.op for op in ops_in_graph} >= {"multiply", "subtract", "split", "take", "get_item", "top_k"}
    assert model.get_layer(index=1).name == "dense" and model.get_layer("split").op == "split"
    model.summary()
    printed = capsys.readouterr().out
    assert "split (Split)" in printed and "get_item (GetItem)" in printed
    assert '"split"' in dj.utils.model_to_dot(model)


def test_config_round_trip_keeps_constants(constants_model):
    model, inputs = constants_model
    rebuilt = dj.Model.from_config(model.get_config())
    rebuilt.set_weights(model.get_weights())
    assert [op.name for op in rebuilt.operations] == [op.name for op in model.operations]
    _assert_same(_outputs(model, inputs), _outputs(rebuilt, inputs))


def test_clone_model_replays_ops(constants_model):
    model, inputs = constants_model
    twin = dj.models.clone_model(model)
    twin.set_weights(model.get_weights())
    _assert_same(_outputs(model, inputs), _outputs(twin, inputs))


def test_model_file_round_trip(constants_model, tmp_path):
    model, inputs = constants_model
    model.save(tmp_path / "m.dj")
    _assert_same(_outputs(model, inputs), _outputs(dj.load_model(tmp_path / "m.dj"), inputs))


def test_model_of_ops_trains():
    x = dj.Input((4,), name="x")
    h = dj.layers.Dense(8, name="hidden")(x)
    h = ops.relu(h) + ops.square(x[:, :1]) * 0.1
    model = dj.Model(x, ops.squeeze(dj.layers.Dense(1, name="out")(h), axis=-1) * 2.0)
    rng = np.random.default_rng(0)
    data = rng.normal(size=(64, 4)).astype("float32")
    target = (data[:, 0] - data[:, 1]).astype("float32")
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(data, target, batch_size=32, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_incompatible_shapes_name_the_op_the_node_and_the_shapes():
    a, b = dj.Input((3,), name="a"), dj.Input((4,), name="b")
    with pytest.raises(LayerInputError, match=r"dagjax.ops.add \(node 'add'\) cannot take inputs of shape "
                                              r"\[\(None, 3\), \(None, 4\)\]"):
        a + b
    shapes = r"\(None, 3\), \(None, 4, 2\).*got \(3,\) and \(4,\)"
    with pytest.raises(LayerInputError, match=r"dagjax.ops.matmul .*" + shapes):
        a @ dj.Input((4, 2))
    stand_in = r"\(None, 3\) \(shape inference traces each unknown dim.* 83"
    with pytest.raises(LayerInputError, match=r"dagjax.ops.reshape .*" + stand_in):
        ops.reshape(a, (-1, 2))


def test_symbolic_tensor_where_data_is_needed_says_what_to_do():
    x = dj.Input((3,), name="x")
    for use, problem in [
        (bool, "has no truth value"), (np.asarray, "cannot become a NumPy array"),
        (list, "cannot be iterated"), (float, "has no float value"),
    ]:
        with pytest.raises(TypeError, match=problem) as info:
            use(x)
        assert "dj.ops" in str(info.value) and "dj.Model" in str(info.value)
    with pytest.raises(TypeError, match=r"dagjax.ops.clip .*`x_min` must be a constant"):
        ops.clip(x, x, 1.0)


def test_files_name_ops_from_the_registry_only():
    with pytest.raises(ValueError, match=r"Unknown op 'system' \(node 'evil'\).*never code"):
        ops.Operation("system", name="evil")
    with pytest.raises(TypeError, match=r"unknown arguments \['command'\]"):
        ops.Operation("mean", {"command": "rm"})
    entry = {"module": "keras.src.ops.numpy", "class_name": "Kaiser", "config": {"name": "k", "beta": 1.0}}
    with pytest.raises(CheckpointError, match=r"keras.src.ops.numpy.Kaiser, which dagjax.ops does not have"):
        from_keras(entry, "m.keras")


def test_the_readme_ops_snippet_runs_as_written():
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", readme, re.S)
    (snippet,) = [s for s in snippets if "from dagjax import ops" in s]
    namespace = {"dj": dj, "layers": dj.layers, "np": np}
    exec(snippet, namespace)
    model = namespace["model"]
    assert model.output_shape == (None, 3) and [layer.name for layer in model.layers][0] == "x"
    np.testing.assert_allclose(model(np.ones((2, 10, 8), "float32")).sum(axis=-1), [1.0, 1.0], rtol=1e-6)
