"""A model's input and output structures against Keras 3: singletons unpacked, dicts in sorted-key order.

Keras's Functional flattens ``inputs`` and ``outputs`` with ``tree.flatten``
(a dict by sorted key), orders ``model.layers`` (and so ``get_weights()``)
from that flat order, and returns ``unpack_singleton(outputs)``: a list or
tuple of one output comes back as that one array
(keras/src/models/functional.py: ``Functional.call``, ``unpack_singleton``).
"""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 5)).astype("float32")
XB = RNG.normal(size=(6, 3)).astype("float32")
Y = RNG.normal(size=(6, 2)).astype("float32")


def form(value):
    """What a result looks like: ``("dict", keys)``, ``("seq", length)`` or ``("array", shape)``."""
    if isinstance(value, dict):
        return ("dict", list(value))
    if isinstance(value, (list, tuple)):
        return ("seq", len(value))
    return ("array", tuple(value.shape))


def assert_same(got, expected):
    """Same form and the same values, leaf by leaf."""
    assert form(got) == form(expected)
    for g, e in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-6)


def one_output(lib, kind: str):
    """One input and one output, each given as a list or tuple of one, or as a one-entry dict."""
    a = lib.Input((5,), name="a")
    y = lib.layers.Dense(2, name="out")(a)
    wrap = {"list": lambda t, k: [t], "tuple": lambda t, k: (t,), "dict": lambda t, k: {k: t}}[kind]
    return lib.Model(wrap(a, "a"), wrap(y, "k"))


def pair(build, *args):
    kmodel, model = build(keras, *args), build(dj, *args)
    model.set_weights(kmodel.get_weights())
    return kmodel, model


@pytest.mark.parametrize("kind", ["list", "tuple", "dict"])
def test_one_output_and_one_input_structures_match_keras(kind):
    kmodel, model = pair(one_output, kind)
    assert model.input_shape == kmodel.input_shape == (None, 5)
    assert model.output_shape == kmodel.output_shape == (None, 2)
    # Keras names every output by its layer; dagjax names a dict's outputs by key, the names compile takes.
    assert model.output_names == (["k"] if kind == "dict" else kmodel.output_names)
    assert form(model.output) == form(kmodel.output)
    assert form(model(dj.Input((5,)))) == form(kmodel(keras.Input((5,))))  # symbolic: the built structure
    for x in (X, [X], (X,), {"a": X}):  # Keras takes each form for a model of one input
        assert_same(model(x), kmodel(x))
        assert_same(model.predict_on_batch(x), kmodel.predict_on_batch(x))
        assert_same(model.predict(x, batch_size=4, verbose=0), kmodel.predict(x, batch_size=4, verbose=0))
    for m in (kmodel, model):
        m.compile("sgd", "mse")
    for y in (Y, [Y]) + (({"k": Y},) if kind == "dict" else ()):
        np.testing.assert_allclose(model.evaluate(X, y, verbose=0), kmodel.evaluate(X, y, verbose=0), 1e-5)


def test_one_output_list_stays_unpacked_after_save_and_load(tmp_path):
    kmodel, model = pair(one_output, "list")
    model.save(tmp_path / "one.dj")
    loaded = dj.load_model(tmp_path / "one.dj")
    assert form(loaded.output) == ("seq", 1)
    assert_same(loaded.predict(X, verbose=0), kmodel.predict(X, verbose=0))


def dict_outputs(lib):
    """Dict outputs whose insertion order ('zz', 'aa') is not their sorted order."""
    a = lib.Input((5,), name="a")
    h = lib.layers.Dense(6, name="hidden")(a)
    zeta, alpha = lib.layers.Dense(1, name="zeta")(h), lib.layers.Dense(4, name="alpha")(h)
    return lib.Model(a, {"zz": zeta, "aa": alpha})


def test_dict_outputs_follow_keras_sorted_order():
    kmodel, model = dict_outputs(keras), dict_outputs(dj)
    assert [layer.name for layer in model.layers] == [layer.name for layer in kmodel.layers]
    assert [w.shape for w in model.get_weights()] == [w.shape for w in kmodel.get_weights()]
    model.set_weights(kmodel.get_weights())
    assert model.output_names == ["aa", "zz"]
    assert [t.name for t in model.outputs] == kmodel.output_names  # the layers behind them, in Keras's order
    assert model.output_shape == kmodel.output_shape
    assert_same(model(X), kmodel(X))  # the model's own key order, as Keras's call
    assert_same(model.predict(X, verbose=0), kmodel.predict(X, verbose=0))  # sorted keys, as Keras's predict
    assert_same(model.predict_on_batch(X), kmodel.predict_on_batch(X))
    targets = [RNG.normal(size=(6, 4)).astype("float32"), RNG.normal(size=(6, 1)).astype("float32")]
    for m in (kmodel, model):
        m.compile("sgd", {"zz": "mse", "aa": "mae"}, loss_weights={"zz": 0.5, "aa": 2.0})
    for y in (targets, {"aa": targets[0], "zz": targets[1]}):  # a list goes in the flat (sorted) order
        got, expected = (m.evaluate(X, y, verbose=0, return_dict=True) for m in (model, kmodel))
        assert sorted(got) == sorted(expected)
        np.testing.assert_allclose([got[k] for k in expected], list(expected.values()), rtol=1e-5)


def dict_inputs(lib):
    """Dict inputs given in insertion order ('ain', 'zin'), read in the other order by the graph."""
    zin, ain = lib.Input((5,), name="zin"), lib.Input((3,), name="ain")
    dz, da = lib.layers.Dense(2, name="dz")(zin), lib.layers.Dense(2, name="da")(ain)
    h = lib.layers.concatenate([dz, da], name="c")
    return lib.Model({"ain": ain, "zin": zin}, lib.layers.Dense(1, name="o")(h))


def test_dict_inputs_follow_keras_order():
    kmodel, model = pair(dict_inputs)
    assert [layer.name for layer in model.layers] == [layer.name for layer in kmodel.layers]
    assert model.input_names == ["ain", "zin"]
    assert [t.name for t in model.inputs] == [t._keras_history[0].name for t in kmodel.inputs]
    assert model.input_shape == kmodel.input_shape == [(None, 3), (None, 5)]
    x = {"zin": X, "ain": XB}
    assert_same(model(x), kmodel(x))
    assert_same(model.predict(x, verbose=0), kmodel.predict(x, verbose=0))


def late_input(lib):
    """Input 'b' joins the graph two layers below 'a': Keras lists it by depth, not first."""
    a, b = lib.Input((5,), name="a"), lib.Input((3,), name="b")
    h = lib.layers.Dense(4, name="h2")(lib.layers.Dense(4, name="h1")(a))
    return lib.Model([b, a], lib.layers.Dense(1, name="o")(lib.layers.concatenate([h, b], name="c")))


def test_input_layers_take_their_keras_place_in_layers_and_summary():
    kmodel, model = pair(late_input)
    names = [layer.name for layer in kmodel.layers]
    assert names == ["a", "h1", "h2", "b", "c", "o"]
    assert [layer.name for layer in model.layers] == names
    lines = []
    model.summary(print_fn=lines.append)
    rows = [line.split()[1] for line in lines[0].splitlines() if line.startswith("| ")]
    assert rows[1:] == names  # after the header
    assert_same(model([XB, X]), kmodel([XB, X]))
