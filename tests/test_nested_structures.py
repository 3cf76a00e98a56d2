"""Models whose inputs and outputs nest lists and dicts, against Keras 3 from the same weights.

Keras flattens ``inputs`` / ``outputs`` with ``tree.flatten`` (dict keys sorted, at every depth),
returns outputs in the nested structure the model was built with, names a wrongly ranked input by
its path (``0.foo``), names nested losses by their path (``others/2_loss``), and warns, or refuses
where the order would be wrong, when a list is given to a model built on a dict
(keras/src/models/functional.py: ``_standardize_inputs``, ``_adjust_input_rank``).
"""

import functools
import json
import zipfile

import jax
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers

RNG = np.random.default_rng(0)
X1, X2, X3 = (RNG.normal(size=(4, n)).astype("float32") for n in (1, 2, 3))
STRUCTURE_WARNING = "^The structure of `inputs` doesn't match the expected structure"


def nested_dict_model(lib):
    """Inputs and outputs nested as ``{"1": ., "others": {"3": ., "2": .}}`` (insertion order unsorted)."""
    i1, i2, i3 = (lib.Input((n,), name=f"x{n}") for n in (1, 2, 3))
    h = lib.layers.Dense(2, name="mix")(lib.layers.concatenate([i1, i2, i3]))
    outputs = {
        "1": lib.layers.Dense(1, name="d1")(h),
        "others": {"3": lib.layers.Dense(3, name="d3")(h), "2": lib.layers.Dense(2, name="d2")(i2)},
    }
    return lib.Model({"1": i1, "others": {"3": i3, "2": i2}}, outputs)


def pair(build):
    theirs, ours = build(keras), build(dj)
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def nested_x(n=4):
    return {"1": X1[:n], "others": {"3": X3[:n], "2": X2[:n]}}


def assert_same(got, expected):
    """The same structure (dict keys in the same order, at every depth) and the same values."""
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(expected)
    assert _key_orders(got) == _key_orders(expected)
    for g, e in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-6)


def _key_orders(value):
    """Every dict's keys in their order, depth first: what jax's tree structure does not compare."""
    if isinstance(value, dict):
        return [list(value), *(_key_orders(v) for v in value.values())]
    if isinstance(value, (list, tuple)):
        return [_key_orders(v) for v in value]
    return None


def test_nested_dict_model_flattens_and_answers_as_keras():
    theirs, ours = pair(nested_dict_model)
    assert [t.name for t in ours.inputs] == [t.name for t in theirs.inputs] == ["x1", "x2", "x3"]
    assert ours.output_names == ["1", "others/2", "others/3"]  # Keras's loss names: the paths
    assert ours.input_paths == [("1",), ("others", "2"), ("others", "3")]
    assert_same(ours(nested_x()), theirs(nested_x()))
    assert_same(ours.predict(nested_x(), verbose=0), theirs.predict(nested_x(), verbose=0))
    symbolic = {"1": dj.Input((1,), batch_size=2), "others": {"3": dj.Input((3,), batch_size=2),
                                                             "2": dj.Input((2,), batch_size=2)}}
    keras_symbolic = {"1": keras.Input((1,), batch_size=2), "others": {
        "3": keras.Input((3,), batch_size=2), "2": keras.Input((2,), batch_size=2)}}
    got, expected = ours(symbolic), theirs(keras_symbolic)
    assert jax.tree_util.tree_map(lambda t: tuple(t.shape), got) == jax.tree_util.tree_map(
        lambda t: tuple(t.shape), expected
    ) == {"1": (2, 1), "others": {"2": (2, 2), "3": (2, 3)}}
    # The model nested in another, on the same nest of tensors, computes what it computes alone.
    outer = dj.Model(symbolic, got)
    assert_same(outer(nested_x(2)), theirs(nested_x(2)))


def test_nested_structures_save_as_keras_writes_them(tmp_path):
    theirs, ours = pair(nested_dict_model)
    ours.save(tmp_path / "ours.keras", format="keras")
    with zipfile.ZipFile(tmp_path / "ours.keras") as archive:
        written = json.loads(archive.read("config.json"))["config"]
    config = theirs.get_config()
    assert written["input_layers"] == config["input_layers"]  # the nest, in its written key order
    assert written["output_layers"] == config["output_layers"]
    assert_same(keras.saving.load_model(tmp_path / "ours.keras")(nested_x()), theirs(nested_x()))
    theirs.save(tmp_path / "theirs.keras")
    assert_same(dj.load_model(tmp_path / "theirs.keras")(nested_x()), theirs(nested_x()))
    ours.save(tmp_path / "ours.dj")
    loaded = dj.load_model(tmp_path / "ours.dj")
    assert_same(loaded(nested_x()), theirs(nested_x()))
    assert loaded.get_config() == ours.get_config()


@pytest.mark.parametrize("kind", ["list_of_list", "list_of_dict"])
def test_nested_list_inputs_match_keras_and_round_trip_through_json(kind):
    def build(lib):
        x = lib.Input((3,), name="my_input")
        nest = [[x]] if kind == "list_of_list" else [{"foo": x}]
        return lib.Model(nest, lib.layers.Dense(2, name="out")(x))

    theirs, ours = pair(build)
    given = [[X3]] if kind == "list_of_list" else [{"foo": X3}]
    assert_same(ours(given), theirs(given))
    assert_same(ours.predict(given, verbose=0), theirs.predict(given, verbose=0))
    restored = dj.models.model_from_json(ours.to_json())
    assert restored.to_json() == ours.to_json()
    only = restored.inputs[0]
    assert restored.input == ([[only]] if kind == "list_of_list" else [{"foo": only}])
    restored.set_weights(ours.get_weights())
    assert_same(restored(given), theirs(given))


def test_a_wrong_rank_names_the_input_by_its_path_as_keras():
    def build(lib):
        nest = [{"foo": lib.Input((3,), name="my_input")}]
        return lib.Model(nest, lib.layers.Dense(2)(nest[0]["foo"]))

    words = r"name 'my_input' .* path '0\.foo'. Expected shape \(None, 3\), but input has incompatible shape"
    for lib in (keras, dj):
        # A bare array for a nested structure: both warn that it does not nest so, then refuse its rank.
        with pytest.warns(UserWarning, match=STRUCTURE_WARNING), pytest.raises(ValueError, match=words):
            build(lib)(np.ones(()))
    for lib in (keras, dj):
        single = lib.Input((3,), name="foo")
        model = lib.Model(single, lib.layers.Dense(2)(single))
        with pytest.raises(ValueError, match=r"with name 'foo' and path ''\. Expected shape \(None, 3\)"):
            model(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"the input of model '.*' with name 'foo' and path ''"):
        model(np.ones((2, 3, 4)))  # dagjax's words name the model too
    with pytest.raises(ValueError, match=r"name 'foo' and path ''\. .* incompatible shape \(2, 3, 4\)"):
        model.predict(np.ones((2, 3, 4)), verbose=0)


def two_inputs(lib, keys):
    a, b = lib.Input((2,), name=keys[0]), lib.Input((2,), name=keys[1])
    return lib.Model({keys[0]: a, keys[1]: b}, lib.layers.subtract([a, b]))


def test_a_list_for_a_dict_written_unsorted_is_refused_as_keras():
    # Keras flattens a dict by sorted key: a list for {"IT", "IS"} would feed IS first. Both refuse it,
    # in a call and in predict alike.
    given = [np.ones((1, 2), "float32"), np.zeros((1, 2), "float32")]
    words = r"\nExpected: \{'IT': 'IT', 'IS': 'IS'\}\nReceived: inputs=\['Tensor\(shape=\(1, 2\)\)',"
    for lib in (keras, dj):
        model = two_inputs(lib, ["IT", "IS"])
        for method in (model, functools.partial(model.predict, verbose=0)):
            with pytest.raises(ValueError, match=r"doesn't match the expected structure\." + words):
                method(given)
    with pytest.raises(ValueError, match=r"pass a dict keyed by input name"):
        model(given)
    np.testing.assert_allclose(model({"IT": given[0], "IS": given[1]}), given[0] - given[1])
    assert model.apply(*model.init(), given)[0].shape == (1, 2)  # the pure apply takes it in inputs order


def test_a_list_for_a_sorted_dict_warns_once_as_keras_and_goes_on():
    theirs, ours = two_inputs(keras, ["i1", "i2"]), two_inputs(dj, ["i1", "i2"])
    given = [np.ones((3, 2), "float32"), 2 * np.ones((3, 2), "float32")]
    for model in (theirs, ours):
        for method in (model, functools.partial(model.predict, verbose=0)):
            with pytest.warns(UserWarning, match=STRUCTURE_WARNING) as caught:
                np.testing.assert_allclose(method(given), given[0] - given[1])
            assert len([w for w in caught if "The structure of `inputs`" in str(w.message)]) == 1
            assert "Expected: {'i1': 'i1', 'i2': 'i2'}\nReceived: inputs=['Tensor(shape=(3, 2))'," in str(
                caught[0].message
            )
    ours.compile("sgd", "mse")
    with pytest.warns(UserWarning, match=STRUCTURE_WARNING) as caught:
        ours.evaluate(given, given[0], verbose=0)
    assert len(caught) == 1
    # A tuple for a list, and the model's own structure, are no mismatch: no warning.
    a, b = dj.Input((2,)), dj.Input((2,))
    listed = dj.Model([a, b], layers.subtract([a, b]))
    listed.predict(tuple(given), verbose=0)
    ours.predict({"i1": given[0], "i2": given[1]}, verbose=0)


def test_nested_outputs_train_as_keras_with_losses_in_their_structure_or_by_name():
    x = nested_x()
    y = {"1": X1 * 2, "others": {"3": X3 + 1, "2": -X2}}
    nested_loss = {"1": "mse", "others": {"2": "mse", "3": "mae"}}
    theirs = nested_dict_model(keras)
    initial = theirs.get_weights()
    theirs.compile(keras.optimizers.SGD(0.1), loss=nested_loss)
    expected = theirs.fit(x, y, epochs=1, batch_size=2, shuffle=False, verbose=0).history
    for loss in (nested_loss, {"1": "mse", "others/2": "mse", "others/3": "mae"}):
        ours = nested_dict_model(dj)
        ours.set_weights(initial)
        ours.compile(dj.optimizers.SGD(0.1), loss=loss)
        got = ours.fit(x, y, epochs=1, batch_size=2, shuffle=False, verbose=0).history
        assert sorted(got) == sorted(expected) == ["1_loss", "loss", "others/2_loss", "others/3_loss"]
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)
        for g, e in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
