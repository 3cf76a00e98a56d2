"""Dtype policies against Keras 3: the policies, the global one, each layer's dtypes and outputs, files."""

import jax
import keras
import numpy as np
import pytest
from keras_parity import random_weights

import dagjax as dj
from dagjax import layers
from dagjax import mixed_precision as mp

L = keras.layers
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# Keras and dagjax run the same ops in the same dtypes; XLA may fuse them differently, and one
# rounding step of the compute dtype is 2**-8 (bfloat16) or 2**-11 (float16) relative.
TOLERANCE = {"float32": 1e-5, "mixed_bfloat16": 3e-2, "mixed_float16": 4e-3}


@pytest.fixture
def global_policy():
    """Set both libraries' global policy for one test; float32 again afterwards, whatever happens."""

    def set_both(name):
        mp.set_global_policy(name)
        keras.mixed_precision.set_global_policy(name)

    yield set_both
    set_both("float32")


# ------------------------------------------------------------------ the policy objects
@pytest.mark.parametrize(
    "name", ["float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16"]
)
def test_a_policy_has_keras_dtypes_name_repr_and_config(name):
    ours, theirs = mp.DTypePolicy(name), keras.mixed_precision.DTypePolicy(name)
    assert (ours.name, ours.compute_dtype, ours.variable_dtype) == (
        theirs.name, theirs.compute_dtype, theirs.variable_dtype,
    )  # fmt: skip
    assert repr(ours) == repr(theirs) and ours.get_config() == theirs.get_config()
    assert ours == mp.Policy(name) == mp.DTypePolicy.from_config(ours.get_config())
    assert ours != mp.DTypePolicy("float32" if name != "float32" else "mixed_float16")


def test_a_bad_policy_name_fails_as_in_keras():
    with pytest.raises(ValueError, match=r"Cannot convert 'mixed_float8' to a mixed precision DTypePolicy"):
        mp.DTypePolicy("mixed_float8")
    with pytest.raises(TypeError, match="'name' must be a string"):
        mp.DTypePolicy(16)
    with pytest.raises(ValueError, match="Invalid `policy` argument"):
        mp.set_global_policy(3)
    with pytest.raises(ValueError, match="mixed_float8"):
        layers.Dense(2, dtype="mixed_float8")


def test_layers_take_the_global_policy_when_made_and_keep_it(global_policy):
    assert mp.global_policy() == mp.dtype_policy() == mp.DTypePolicy("float32")  # nothing set by importing
    before = layers.Dense(2)
    global_policy("mixed_bfloat16")
    assert dj.config.dtype_policy() == mp.DTypePolicy("mixed_bfloat16")  # keras.config's names too
    during, pinned = layers.Dense(2), layers.Dense(2, dtype="float32")
    by_object = layers.Dense(2, dtype=mp.DTypePolicy("mixed_float16"))
    global_policy("float32")
    assert before.dtype_policy.name == "float32" and during.dtype_policy.name == "mixed_bfloat16"
    assert (during.compute_dtype, during.variable_dtype, during.dtype) == ("bfloat16", "float32", "float32")
    assert pinned.compute_dtype == "float32" and by_object.compute_dtype == "float16"
    dj.clear_session()  # restarts names only: a tuner's trials keep the user's policy
    assert mp.global_policy().name == "float32"


# ------------------------------------------------------------------ a small model, both libraries
def keras_model():
    a, idx = keras.Input((6,), name="a"), keras.Input((3,), dtype="int32", name="idx")
    h = L.Dense(8, activation="relu", name="dense")(a)
    h = L.BatchNormalization(name="bn")(h)
    e = L.Flatten(name="flat")(L.Embedding(7, 2, name="emb")(idx))
    h = L.Concatenate(name="cat")([L.LayerNormalization(name="ln")(h), e])
    probs = L.Dense(4, activation="softmax", name="probs")(h)
    return keras.Model([a, idx], [probs, L.Activation("softmax", dtype="float32", name="out32")(probs)])


def dagjax_model():
    a, idx = dj.Input((6,), name="a"), dj.Input((3,), dtype="int32", name="idx")
    h = layers.Dense(8, activation="relu", name="dense")(a)
    h = layers.BatchNormalization(name="bn")(h)
    e = layers.Flatten(name="flat")(layers.Embedding(7, 2, name="emb")(idx))
    h = layers.Concatenate(name="cat")([layers.LayerNormalization(name="ln")(h), e])
    probs = layers.Dense(4, activation="softmax", name="probs")(h)
    return dj.Model([a, idx], [probs, layers.Activation("softmax", dtype="float32", name="out32")(probs)])


def dtypes(model):
    """Per layer: policy, compute dtype, weight dtypes and output dtype, as both libraries name them."""
    table = {}
    for layer in model.layers:
        output = layer.output[0] if isinstance(layer.output, list) else layer.output
        table[layer.name] = (
            layer.dtype_policy.name if not isinstance(layer, (L.InputLayer, layers.InputLayer)) else "-",
            str(layer.compute_dtype) if not isinstance(layer, (L.InputLayer, layers.InputLayer)) else "-",
            np.dtype(output.dtype).name,
        )
    return table


@pytest.mark.parametrize("policy", POLICIES[1:])  # float32, Keras's default, is every other parity test's
def test_each_layer_computes_and_returns_what_keras_s_does_with_the_same_outputs(global_policy, policy):
    global_policy(policy)
    theirs, ours = keras_model(), dagjax_model()
    assert dtypes(ours) == dtypes(theirs)
    assert ours.dtype_policy.name == theirs.dtype_policy.name == policy
    ours.set_weights(random_weights(theirs))
    weights = jax.tree_util.tree_leaves((ours.params, ours.state))
    assert {np.dtype(w.dtype).name for w in weights} == {"float32"}
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(5, 6)).astype("float32"), rng.integers(0, 7, (5, 3)).astype("int32")]
    keras_call = jax.jit(lambda t, n, x: theirs.stateless_call(t, n, x, training=False)[0])  # one compile
    variables = [[v.value for v in vs] for vs in (theirs.trainable_variables, theirs.non_trainable_variables)]
    expected = [np.asarray(v) for v in keras_call(*variables, x)]
    got, _ = jax.jit(ours.apply)(ours.params, ours.state, x)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype
        tol = TOLERANCE[policy]
        np.testing.assert_allclose(np.asarray(g, "float32"), e.astype("float32"), rtol=tol, atol=tol)


# ------------------------------------------------------------------ configs and files
def test_a_layer_config_carries_its_policy_as_keras_3_writes_it(global_policy):
    global_policy("mixed_bfloat16")
    ours, theirs = layers.Dense(3).get_config()["dtype"], L.Dense(3).get_config()["dtype"]
    assert ours == {key: theirs[key] for key in ("class_name", "config")}
    global_policy("float32")  # a config read under another global policy keeps its own
    config = layers.Dense(3, dtype="mixed_float16").get_config()
    assert layers.Dense.from_config(config).compute_dtype == "float16"
    assert layers.Dense.from_config({"units": 3, "dtype": theirs}).dtype_policy.name == "mixed_bfloat16"
    assert layers.Dense.from_config({"units": 3, "dtype": "float16"}).compute_dtype == "float16"  # old files


def test_a_saved_model_loads_with_its_layers_policies_under_any_global_policy(global_policy, tmp_path):
    global_policy("mixed_bfloat16")
    model = dagjax_model()
    model.set_weights([w + 0.1 for w in model.get_weights()])
    model.save(tmp_path / "m.dj")
    model.save(tmp_path / "m.keras", format="keras")
    global_policy("float32")
    x = [np.ones((2, 6), "float32"), np.ones((2, 3), "int32")]
    expected = model(x)
    assert dtypes(keras.models.load_model(tmp_path / "m.keras")) == dtypes(model)  # Keras reads them too
    for path in ("m.dj", "m.keras"):
        loaded = dj.load_model(tmp_path / path)
        assert dtypes(loaded) == dtypes(model)
        for g, e in zip(loaded(x), expected):
            assert g.dtype == e.dtype
            np.testing.assert_array_equal(np.asarray(g, "float32"), np.asarray(e, "float32"))
