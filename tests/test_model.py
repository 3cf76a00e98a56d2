"""Graph building, introspection, the pure init/apply pair, and build-time errors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers


def two_branch_model():
    text = dj.Input(shape=(None,), dtype="int32", name="text")
    meta = dj.Input(shape=(6,), name="meta")
    x = layers.Embedding(20, 4)(text)
    x = layers.Lambda(lambda t: t.max(axis=1), name="pool")(x)
    m = layers.Dense(5, activation="relu")(meta)
    h = layers.concatenate([x, m])
    age = layers.Dense(1, name="age")(h)
    income = layers.Dense(3, activation="softmax", name="income")(h)
    return dj.Model([text, meta], [age, income])


def batch(n=3, t=7, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "text": rng.integers(0, 20, (n, t)).astype("int32"),
        "meta": rng.normal(size=(n, 6)).astype("float32"),
    }


def test_input_is_symbolic_with_batch_dim():
    x = dj.Input(shape=(None, 3), dtype="int32")
    assert x.shape == (None, None, 3)
    assert x.dtype == np.dtype("int32")
    assert dj.Input(shape=(4,), batch_size=8).shape == (8, 4)


def test_introspection():
    model = two_branch_model()
    assert model.input_names == ["text", "meta"]
    assert model.output_names == ["age", "income"]
    assert [layer.name for layer in model.layers[:3]] == ["text", "embedding", "meta"]  # Keras's: by depth
    assert model.get_layer("age") is model.layers[-2] or model.get_layer("age") in model.layers
    assert model.get_layer(index=0).name == "text"
    assert model.output_shape == [(None, 1), (None, 3)]
    assert model.input == model.inputs
    assert model.get_layer("income").input_shape == (None, 9)
    assert model.count_params() == 20 * 4 + (6 * 5 + 5) + (9 + 1) + (9 * 3 + 3)
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        model.get_layer("nope")


def test_graph_read_accessors():
    """What other packages read of a model: its calls, its layers with the Inputs, its weight shapes."""
    x = dj.Input((3,), name="x")
    dense = layers.Dense(3, name="shared")
    y = layers.Dense(2, name="out")(dense(dense(x)))
    model = dj.Model(x, y)
    assert [(n.layer.name, dense.inbound_nodes.index(n) if n.layer is dense else 0) for n in model.nodes] == [
        ("shared", 0), ("shared", 1), ("out", 0)
    ]
    assert [lay.name for lay in model.operations] == [lay.name for lay in model.layers]
    model.nodes.clear()  # copies: the graph is read-only through them
    dense.inbound_nodes.clear()
    assert len(model.nodes) == 3 and len(dense.inbound_nodes) == 2
    params, state = model.init()
    assert jax.tree.map(lambda a: (a.shape, a.dtype), model.abstract_weights(True)) == jax.tree.map(
        lambda a: (a.shape, a.dtype), params
    )
    assert model.abstract_weights(False) == state == {}
    (flat,) = model.flat_inputs({"x": np.ones((2, 3), "float64")})
    assert flat.dtype == np.float32

    seq = dj.Sequential([dj.Input((4,)), layers.Dense(1)])
    assert [type(lay).__name__ for lay in seq.operations] == ["InputLayer", "Dense"]
    assert [type(lay).__name__ for lay in seq.layers] == ["Dense"]
    assert dj.Sequential([layers.Dense(1)]).nodes == []  # no graph yet


def test_apply_list_dict_and_jit_agree():
    model = two_branch_model()
    params, state = model.init(jax.random.key(1))
    data = batch()
    by_dict, _ = model.apply(params, state, data)
    by_list, _ = jax.jit(model.apply)(params, state, [data["text"], data["meta"]])
    for a, b in zip(by_dict, by_list):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert by_dict[1].shape == (3, 3)


def test_dict_inputs_matched_by_name():
    zeta = dj.Input((2,), name="zeta")
    alpha = dj.Input((3,), name="alpha")
    out = layers.concatenate([zeta, alpha])
    model = dj.Model({"zeta": zeta, "alpha": alpha}, out)
    assert model.input_names == ["alpha", "zeta"]  # Keras's flat order: sorted keys
    result, _ = model.apply({}, {}, {"alpha": jnp.ones((1, 3)), "zeta": jnp.zeros((1, 2))})
    np.testing.assert_array_equal(result, [[0, 0, 1, 1, 1]])


def test_dict_outputs_keep_structure_and_names():
    x = dj.Input((3,))
    model = dj.Model(x, {"b": layers.Dense(2)(x), "a": layers.Dense(1)(x)})
    assert model.output_names == ["a", "b"]
    out = model(np.ones((4, 3), "float32"))
    assert set(out) == {"a", "b"} and out["b"].shape == (4, 2)


def test_shared_layer_has_one_entry_and_summed_gradient():
    a, b = dj.Input((3,), name="a"), dj.Input((3,), name="b")
    shared = layers.Dense(2, name="shared")
    model = dj.Model([a, b], layers.add([shared(a), shared(b)]))
    params, state = model.init()
    assert list(params) == ["shared"]
    xa, xb = jnp.arange(6.0).reshape(2, 3), jnp.ones((2, 3))

    def loss(p):
        return model.apply(p, state, [xa, xb])[0].sum()

    grad = jax.grad(loss)(params)["shared"]["kernel"]
    per_use = jax.grad(lambda k: (xa @ k).sum() + (xb @ k).sum())(params["shared"]["kernel"])
    np.testing.assert_allclose(grad, per_use, rtol=1e-6)
    np.testing.assert_allclose(grad, np.repeat((xa.sum(0) + xb.sum(0))[:, None], 2, 1), rtol=1e-6)


def test_feature_extraction_model_shares_parameter_keys():
    model = two_branch_model()
    features = dj.Model(model.input, [layer.output for layer in model.layers[2:]])
    params, state = model.init(jax.random.key(3))
    outs, _ = features.apply(params, state, batch())
    full, _ = model.apply(params, state, batch())
    np.testing.assert_allclose(outs[-2], full[0], rtol=1e-6)
    np.testing.assert_allclose(outs[-1], full[1], rtol=1e-6)


def test_nested_model_params_nest_and_share():
    inner_in = dj.Input((4,))
    base = dj.Model(inner_in, layers.Dense(3, name="dense")(inner_in), name="base")
    a, b = dj.Input((4,)), dj.Input((4,))
    outer = dj.Model([a, b], layers.subtract([base(a), base(b)]))
    params, state = outer.init()
    assert params["base"]["dense"]["kernel"].shape == (4, 3)
    assert list(params) == ["base"]
    x = jnp.ones((2, 4))
    out, _ = outer.apply(params, state, [x, x])
    np.testing.assert_allclose(out, 0.0)
    assert len(outer.get_weights()) == 2


def test_sequential_add_and_build():
    model = dj.Sequential([dj.Input((5,)), layers.Dense(4, activation="relu")])
    model.add(layers.Dense(2))
    assert [type(lay).__name__ for lay in model.layers] == ["Dense", "Dense"]
    assert model.output_shape == (None, 2)
    assert model(np.ones((3, 5), "float32")).shape == (3, 2)

    deferred = dj.Sequential([layers.Dense(3), layers.Dense(1)])
    with pytest.raises(ValueError, match="no input shape yet"):
        deferred.init()
    deferred.build((None, 7))
    assert deferred.count_params() == 7 * 3 + 3 + 3 + 1


def test_sequential_used_as_a_layer():
    block = dj.Sequential([layers.Dense(3), layers.Dense(2)], name="block")
    x = dj.Input((4,))
    model = dj.Model(x, block(x))
    params, _ = model.init()
    assert set(params["block"]) == {"dense", "dense_1"}


def test_layer_input_and_output_are_those_of_its_first_call_as_in_keras_3():
    x = dj.Input((3,))
    dense = layers.Dense(2)
    y = dense(x)
    assert dense.input is x and dense.output is y
    dense(dj.Input((3,)))
    assert dense.input is x and dense.output is y
    with pytest.raises(AttributeError, match="has not been called yet"):
        _ = layers.Dense(2).output


def test_a_model_between_intermediate_tensors_has_inputs_of_its_own_and_shares_weights():
    x = dj.Input((2,))
    first, second = layers.Dense(3), layers.Dense(4)
    hidden = first(x)
    full = dj.Model(x, second(hidden))
    tail = dj.Model(hidden, full.output)  # as Keras: a new Input for `hidden`, second's call replayed on it
    assert [type(layer).__name__ for layer in tail.layers] == ["InputLayer", "Dense"]
    h = np.ones((2, 3), "float32")
    full_params = full.params
    np.testing.assert_allclose(tail.apply({second.name: full_params[second.name]}, {}, h)[0],
                               h @ full_params[second.name]["kernel"] + full_params[second.name]["bias"],
                               rtol=1e-6)


def test_deep_chain_builds_and_runs_without_recursion():
    x = inp = dj.Input((2,))
    for _ in range(10_000):
        x = layers.Activation("linear")(x)
    model = dj.Model(inp, layers.Dense(1, kernel_initializer="ones")(x))
    assert len(model.layers) == 10_002
    out = jax.jit(model.apply)(*model.init(), jnp.ones((1, 2)))[0]
    np.testing.assert_allclose(out, [[2.0]])


def test_dropout_needs_rng_in_training_and_is_deterministic():
    x = dj.Input((100,))
    model = dj.Model(x, layers.Dropout(0.5)(x))
    ones = jnp.ones((2, 100))
    np.testing.assert_array_equal(model.apply({}, {}, ones)[0], ones)
    with pytest.raises(ValueError, match="needs an rng"):
        model.apply({}, {}, ones, training=True)
    key = jax.random.key(0)
    first = model.apply({}, {}, ones, training=True, rng=key)[0]
    again = model.apply({}, {}, ones, training=True, rng=key)[0]
    np.testing.assert_array_equal(first, again)
    assert set(np.unique(np.asarray(first))) == {0.0, 2.0}


def test_vmap_and_grad_through_apply():
    model = two_branch_model()
    params, state = model.init()
    data = batch(n=2)
    stacked = jax.tree_util.tree_map(lambda v: jnp.stack([v, v]), data)
    out = jax.vmap(lambda d: model.apply(params, state, d)[0][0])(stacked)
    assert out.shape == (2, 2, 1)


def test_regularizer_penalties():
    x = dj.Input((3,))
    h = layers.Dense(2, kernel_regularizer="l2", kernel_initializer="ones", activity_regularizer="l1")(x)
    model = dj.Model(x, h)
    params, state = model.init()
    np.testing.assert_allclose(model.weight_penalty(params), 0.01 * 6)
    ones = jnp.ones((4, 3))
    _, _, activity = model.apply_with_penalty(params, state, ones)
    np.testing.assert_allclose(activity, 0.01 * (4 * 2 * 3.0) / 4, rtol=1e-6)


def test_get_set_weights_round_trip():
    model = two_branch_model()
    weights = [w + 1.0 for w in model.get_weights()]
    model.set_weights(weights)
    for got, want in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="has shape"):
        model.set_weights([w[..., :1] if w.ndim else w for w in weights])


def test_to_json_and_model_from_json_round_trip_as_keras():
    inputs = dj.Input((3,), name="x")
    model = dj.Model(inputs, layers.Dense(2, activation="relu")(layers.Dense(4)(inputs)))
    text = model.to_json()
    assert json.loads(text)["config"] == json.loads(json.dumps(model.get_config()))  # JSON: tuples as lists
    restored = dj.models.model_from_json(text)
    assert restored.to_json() == text
    restored.set_weights(model.get_weights())
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(restored(x), model(x))
    stack = dj.Sequential([dj.Input((3,)), layers.Dense(2)])
    assert dj.models.model_from_json(stack.to_json(indent=2)).to_json() == stack.to_json()


def test_summary_lists_every_layer(capsys):
    model = two_branch_model()
    model.summary()
    printed = capsys.readouterr().out
    for layer in model.layers:
        assert f"{layer.name} ({type(layer).__name__}" in printed
    assert f"Total params: {model.count_params():,}" in printed
    assert "text[0][0]" in printed


# --------------------------------------------------------------------- errors


def test_graph_disconnected_names_missing_input():
    a, b = dj.Input((2,), name="a"), dj.Input((2,), name="b")
    out = layers.add([a, b])
    with pytest.raises(ValueError, match="Graph disconnected.*'add'.*input 'b'"):
        dj.Model(a, out)


def test_duplicate_layer_names():
    x = dj.Input((2,))
    y = layers.Dense(2, name="same")(layers.Dense(2, name="same")(x))
    with pytest.raises(ValueError, match="'same' is used by two layers"):
        dj.Model(x, y)


def test_output_must_be_symbolic():
    x = dj.Input((2,))
    with pytest.raises(TypeError, match="outputs must be symbolic.*ndarray"):
        dj.Model(x, np.ones(2))


def test_wrong_rank_and_merge_shapes_and_dtype():
    with pytest.raises(
        ValueError, match=r"Layer 'repeat_vector' \(RepeatVector\) expects input of rank 2.*\(None, 2, 3\)"
    ):
        layers.RepeatVector(2)(dj.Input((2, 3)))
    with pytest.raises(ValueError, match=r"cannot merge.*\(None, 3\).*\(None, 4\)"):
        layers.add([dj.Input((3,)), dj.Input((4,))])
    with pytest.raises(ValueError, match="cannot concatenate"):
        layers.concatenate([dj.Input((3, 2)), dj.Input((4, 2))])


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="Unknown activation 'relux'.*relu"):
        layers.Dense(2, activation="relux")
    with pytest.raises(ValueError, match="Unknown initializer 'glorot'.*glorot_uniform"):
        layers.Dense(2, kernel_initializer="glorot")


def test_apply_input_errors_name_the_input():
    model = two_branch_model()
    params, state = model.init()
    with pytest.raises(ValueError, match=r"missing \['meta'\]"):
        model.apply(params, state, {"text": batch()["text"]})
    with pytest.warns(UserWarning, match=r"no inputs named \['extra'\]: those entries are ignored"):
        model.apply(params, state, {**batch(), "extra": np.ones(3)})  # as Keras: a warning, the entry dropped
    with pytest.raises(ValueError, match=r"Input 'meta' .* expected shape=\(None, 6\), found shape=\(3, 5\)"):
        model.apply(params, state, {"text": batch()["text"], "meta": np.ones((3, 5), "float32")})
    with pytest.raises(ValueError, match=r"expects 2 named input\(s\)"):
        model.apply(params, state, [batch()["text"]])


def test_shared_layer_with_incompatible_shape():
    dense = layers.Dense(2)
    dense(dj.Input((3,)))
    with pytest.raises(ValueError, match="first called on inputs of shape"):
        dense(dj.Input((4,)))


def test_calling_a_layer_on_arrays_explains_what_to_do():
    with pytest.raises(TypeError, match="symbolic tensors"):
        layers.Dense(2)(np.ones((1, 3)))


def test_a_shape_inference_error_says_which_user_dimension_the_stand_in_size_replaces():
    x = dj.Input((3,))
    with pytest.raises(ValueError, match=r"Layer 'lambda\w*' \(Lambda\) failed on inputs of shape "
                                         r"\(None, 3\) \(shape inference traces each unknown dimension as 83"
                                         r".*"
                                         r"cannot reshape array of shape \(83, 3\)"):
        dj.layers.Lambda(lambda t: t.reshape(10, -1))(x)


class KerasStyleStep(dj.Model):
    def train_step(self, data):
        raise AssertionError("never called")


@pytest.mark.parametrize("use", ["compile", "predict"])
def test_a_keras_train_step_override_is_refused_not_silently_ignored(use):
    x = dj.Input((2,))
    model = KerasStyleStep(x, layers.Dense(1)(x))
    refused = r"KerasStyleStep.train_step\(self, data\) is Keras.s stateful form.*\(self, train_state"
    with pytest.raises(NotImplementedError, match=refused):
        model.compile("adam", "mse") if use == "compile" else model.predict(np.ones((2, 2), "float32"))
