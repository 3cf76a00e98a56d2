"""dagjax.ops against keras.ops: same signatures, same values on arrays, same shapes on symbolic tensors.

Every op runs on the same arrays in both libraries (values to 5 decimals, same dtype), and on
symbolic tensors with an unknown batch dimension (same output shapes and dtypes as Keras's
KerasTensors). A model mixing ops and layers gives Keras's outputs from the same weights.
"""

import inspect
import json

import jax
import numpy as np
import pytest
from keras_parity import random_weights

import dagjax as dj
from dagjax import ops
from dagjax._graph import flatten
from dagjax.io._keras_config import to_keras

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
DATA = {
    "x": RNG.normal(size=(2, 3, 4)).astype("float32"),
    "y": RNG.normal(size=(2, 3, 4)).astype("float32"),
    "p": RNG.uniform(0.5, 2.0, size=(2, 3, 4)).astype("float32"),  # positive
    "s": RNG.normal(size=(2, 1, 4)).astype("float32"),  # a size-1 axis
    "t": RNG.normal(size=(2, 4, 3)).astype("float32"),  # x's last two axes swapped
    "i": RNG.integers(0, 3, size=(2, 3)).astype("int32"),
    "j": RNG.integers(0, 4, size=(2, 3, 1)).astype("int32"),
    "b": RNG.normal(size=(2, 3, 4)) > 0,
    "c": RNG.normal(size=(2, 3, 4)) > 0,
}


class A:
    """An array of DATA (or, symbolically, an Input of its shape) among a case's arguments."""

    def __init__(self, key):
        self.key = key


x, y, p, s, t, i, j, b, c = (A(k) for k in "xypstijbc")

CASES = [
    ("add", (x, y), {}), ("add", (x, 2), {}), ("subtract", (2.5, x), {}), ("multiply", (x, y), {}),
    ("divide", (x, p), {}), ("divide", (i, 2), {}), ("true_divide", (x, p), {}),
    ("floor_divide", (x, 0.7), {}), ("mod", (x, 0.7), {}), ("power", (p, y), {}), ("power", (x, 2), {}),
    ("maximum", (x, 0.0), {}), ("minimum", (x, y), {}), ("matmul", (x, t), {}),
    ("dot", (x, np.ones((4, 2), "float32")), {}), ("equal", (i, 1), {}), ("not_equal", (x, y), {}),
    ("less", (x, y), {}), ("less_equal", (x, 0.0), {}), ("greater", (x, y), {}),
    ("greater_equal", (x, y), {}), ("logical_and", (b, c), {}), ("logical_or", (b, c), {}),
    ("logical_xor", (b, c), {}), ("logical_not", (b,), {}), ("negative", (x,), {}), ("absolute", (x,), {}),
    ("abs", (i,), {}), ("square", (x,), {}), ("sqrt", (p,), {}), ("sqrt", (i,), {}), ("exp", (x,), {}),
    ("exp", (i,), {}), ("log", (p,), {}), ("log1p", (p,), {}), ("sign", (x,), {}), ("floor", (x,), {}),
    ("ceil", (x,), {}), ("sin", (x,), {}), ("cos", (x,), {}), ("tanh", (x,), {}), ("rsqrt", (p,), {}),
    ("erf", (x,), {}), ("isnan", (x,), {}), ("round", (x,), {"decimals": 1}), ("clip", (x, -0.5, 0.5), {}),
    ("where", (b, x, y), {}), ("where", (b, x, 0.0), {}), ("einsum", ("bij,bkj->bik", x, y), {}),
    ("mean", (x,), {"axis": 1}), ("mean", (i,), {}), ("sum", (x,), {"axis": (1, 2), "keepdims": True}),
    ("sum", (b,), {"axis": -1}), ("var", (x,), {"axis": -1}), ("std", (x,), {"axis": -1}),
    ("argmax", (x,), {"axis": -1}), ("argmin", (x,), {"axis": 1}), ("any", (b,), {"axis": 1}),
    ("all", (b,), {}), ("logsumexp", (x,), {"axis": 1}), ("max", (x,), {"axis": 1}), ("min", (x,), {}),
    ("prod", (x,), {"axis": 1}), ("cumsum", (x,), {"axis": 1}), ("sort", (x,), {}),
    ("reshape", (x, (-1, 12)), {}), ("transpose", (x, (0, 2, 1)), {}), ("transpose", (x,), {}),
    ("expand_dims", (x, 1), {}), ("squeeze", (s,), {"axis": 1}), ("swapaxes", (x, 1, 2), {}),
    ("moveaxis", (x, 1, 2), {}), ("flip", (x,), {"axis": 1}), ("tile", (x, (1, 2, 1)), {}),
    ("repeat", (x, 2), {"axis": 1}), ("split", (x, 2), {"axis": -1}), ("split", (x, [1]), {"axis": 1}),
    ("concatenate", ([x, y],), {"axis": 1}), ("stack", ([x, y],), {"axis": 1}),
    ("take", (x, i), {"axis": 1}), ("take", (x, [0, 2]), {"axis": 1}),
    ("take_along_axis", (x, j), {"axis": 2}), ("get_item", (x, (slice(None), 0)), {}),
    ("get_item", (x, (Ellipsis, slice(1, 3))), {}), ("get_item", (x, (slice(None), None)), {}),
    ("get_item", (x, (slice(None), slice(None, None, 2), -1)), {}), ("zeros_like", (x,), {}),
    ("ones_like", (x,), {"dtype": "int32"}), ("full_like", (x, 3.0), {}), ("relu", (x,), {}),
    ("relu6", (x,), {}), ("sigmoid", (x,), {}), ("silu", (x,), {}), ("swish", (x,), {}), ("selu", (x,), {}),
    ("softplus", (x,), {}), ("softsign", (x,), {}), ("hard_sigmoid", (x,), {}),
    ("softmax", (x,), {"axis": 1}), ("log_softmax", (x,), {}), ("gelu", (x,), {}),
    ("gelu", (x,), {"approximate": False}), ("elu", (x,), {"alpha": 0.5}), ("leaky_relu", (x,), {}),
    ("one_hot", (i, 5), {}), ("one_hot", (i, 5), {"axis": 1, "dtype": "int32"}), ("normalize", (x,), {}),
    ("normalize", (x,), {"order": 1, "axis": 1}), ("top_k", (x, 2), {}), ("cast", (x, "int32"), {}),
    ("stop_gradient", (x,), {}), ("norm", (x,), {"axis": -1}), ("norm", (x,), {}),
    ("broadcast_to", (s, (2, 3, 4)), {}), ("unstack", (x,), {"axis": 1}),
    ("convert_to_tensor", (i, "float32"), {}), ("ones", ((2, 3),), {}),
    ("zeros", ((2,),), {"dtype": "int32"}), ("full", ((2, 2), 3), {}), ("arange", (3,), {}),
    ("arange", (0.5, 3.0, 0.5), {}), ("eye", (3, 4), {"k": 1}), ("array", ([0, 1, 2],), {}),
    ("array", ([[1, 0], [0.5, 2]],), {"dtype": "float32"}),
]
KNOWN_BATCH = {"broadcast_to"}  # its target shape names the batch size, which must then be known
MAKERS = {"ones", "zeros", "full", "arange", "eye", "array"}  # they take no tensor: nothing to record
IDS = [f"{name}-{n}" for n, (name, _, _) in enumerate(CASES)]


def _fill(args, make):
    """``args`` with each ``A`` replaced by ``make(key)`` (lists and tuples kept as they are)."""
    if isinstance(args, A):
        return make(args.key)
    if isinstance(args, (list, tuple)):
        return type(args)(_fill(a, make) for a in args)
    return args


def test_every_op_is_a_case_and_has_keras_signature():
    public = {name for name, f in vars(ops).items() if callable(f) and not name.startswith("_")}
    public -= {"Operation"}
    assert public - {name for name, _, _ in CASES} == {"shape"}  # shape gives a tuple: tested on its own
    for name in sorted(public):
        ours = inspect.signature(getattr(ops, name)).parameters
        theirs = dict(inspect.signature(getattr(keras.ops, name)).parameters)
        theirs.pop("kwargs", None)  # einsum's, which only other backends read
        arguments = lambda params: [(p.name, p.default) for p in params.values()]
        assert arguments(ours) == arguments(theirs), name


def _run_cases(namespace, data):
    return [getattr(namespace, name)(*_fill(args, data.get), **kwargs) for name, args, kwargs in CASES]


@pytest.fixture(scope="module")
def results_on_arrays():
    """Every case in keras.ops and in dagjax.ops, on (traced) arrays: one program, so one compile for all."""
    return jax.jit(lambda data: (_run_cases(keras.ops, data), _run_cases(ops, data)))(DATA)


@pytest.mark.parametrize("n", range(len(CASES)), ids=IDS)
def test_op_on_arrays_matches_keras(n, results_on_arrays):
    expected, got = (jax.tree_util.tree_leaves(results[n]) for results in results_on_arrays)
    assert len(got) == len(expected)
    for e, g in zip(expected, got):
        assert np.dtype(g.dtype) == np.dtype(e.dtype)
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-5)


def test_ops_run_eagerly_on_numpy_arrays_and_python_numbers():
    assert ops.add(1, 2) == 3 and ops.mean(np.ones((2, 3), "int32")).dtype == np.float32
    np.testing.assert_allclose(ops.softmax(DATA["x"]), keras.ops.softmax(DATA["x"]), rtol=1e-6)
    np.testing.assert_array_equal(ops.get_item(DATA["x"], [slice(None), 0]), DATA["x"][:, 0])
    assert ops.cast([1.5, 2.5], "int32").dtype == np.int32
    assert ops.shape(DATA["x"]) == (2, 3, 4) and ops.shape(dj.Input((None, 4))) == (None, None, 4)


@pytest.mark.parametrize("name, args, kwargs", [c for c in CASES if c[0] not in MAKERS])
def test_op_on_symbolic_tensors_matches_keras(name, args, kwargs):
    batch = 2 if name in KNOWN_BATCH else None
    k_args = _fill(args, lambda k: keras.Input(DATA[k].shape[1:], batch, dtype=DATA[k].dtype))
    expected = getattr(keras.ops, name)(*k_args, **kwargs)
    d_args = _fill(args, lambda k: dj.Input(DATA[k].shape[1:], DATA[k].dtype, batch_size=batch))
    got = flatten(getattr(ops, name)(*d_args, **kwargs))
    specs = lambda tensors: [(tuple(t.shape), np.dtype(t.dtype)) for t in tensors]
    assert specs(got) == specs(keras.tree.flatten(expected))
    assert all(isinstance(t, dj.SymbolicTensor) for t in got)
    # The node as a .keras file writes it: Keras's own op class and config for this call.
    op = keras.tree.flatten(expected)[0]._keras_history.operation
    entry = to_keras(got[0].node.layer)
    assert (entry["module"], entry["class_name"]) == (type(op).__module__, type(op).__name__)
    theirs = json.loads(json.dumps({**op.get_config(), "name": entry["config"]["name"]}))
    if entry["config"].get("dtype", "") is None:  # Keras writes its default float type in
        theirs["dtype"] = None
    assert entry["config"] == theirs


def _mixed_model(lib):
    """Ops and layers together, built the same way with Keras's or dagjax's names."""
    o = lib.ops
    a, b = lib.Input((3, 4), name="a"), lib.Input((4,), name="b")
    h = lib.layers.Dense(4, name="dense")(a)
    h = o.relu(h) * 2 + a[:, :, ::-1] - 0.5
    pooled = o.mean(h, axis=1)
    gate = o.sigmoid(lib.layers.Dense(4, name="gate")(b))
    z = o.concatenate([pooled * gate, -b, abs(b) ** 2, o.where(b > 0, b, 0.0)], axis=-1)
    z = o.squeeze(o.expand_dims(z, 1), 1) / o.maximum(o.sqrt(o.sum(z * z, axis=-1, keepdims=True)), 1e-3)
    logits = lib.layers.Dense(3, name="out")(z)
    outputs = [o.softmax(logits), o.argmax(logits, axis=-1), h[:, 0], o.one_hot(o.argmax(z, -1), 4)]
    return lib.Model([a, b], outputs)


@pytest.fixture(scope="module")
def mixed_models():
    keras.backend.clear_session()  # auto names from scratch in both, as the tests' fixture does for dagjax
    dj.clear_session()
    k_model, d_model = _mixed_model(keras), _mixed_model(dj)
    d_model.set_weights(random_weights(k_model))
    inputs = [RNG.normal(size=(5, 3, 4)).astype("float32"), RNG.normal(size=(5, 4)).astype("float32")]
    return k_model, d_model, inputs


def _assert_same_outputs(k_model, d_model, inputs):
    expected, got = k_model(inputs), d_model(inputs)
    assert [tuple(t.shape) for t in d_model.outputs] == [tuple(t.shape) for t in k_model.outputs]
    for e, g in zip(expected, got):
        assert np.dtype(g.dtype) == np.dtype(e.dtype)
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-5)


def test_model_of_ops_and_layers_matches_keras(mixed_models):
    k_model, d_model, inputs = mixed_models
    assert [layer.name for layer in d_model.layers] == [layer.name for layer in k_model.layers]
    assert [op.name for op in d_model.operations] == [op.name for op in k_model.operations]
    _assert_same_outputs(k_model, d_model, inputs)


def test_keras_file_with_ops_loads_in_dagjax(mixed_models, tmp_path):
    k_model, _, inputs = mixed_models
    k_model.save(tmp_path / "k.keras")
    _assert_same_outputs(k_model, dj.load_model(tmp_path / "k.keras"), inputs)


def test_dagjax_file_with_ops_loads_in_keras(mixed_models, tmp_path):
    k_model, d_model, inputs = mixed_models
    d_model.save(tmp_path / "d.keras", format="keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    assert [op.name for op in loaded.operations] == [op.name for op in d_model.operations]
    _assert_same_outputs(loaded, d_model, inputs)
