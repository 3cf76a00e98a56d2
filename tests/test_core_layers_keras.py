"""Core layers, merges and graph ordering against Keras 3 itself."""

import keras
import numpy as np
import pytest
from keras_parity import assert_same_function, assert_shape_invariant

import dagjax as dj
from dagjax import initializers, layers

RNG = np.random.default_rng(0)


def single(dj_layer, keras_layer, shape, dtype="float32", data=None):
    """One-layer models in both libraries over an input of ``shape``."""
    x = dj.Input(shape, dtype=dtype)
    kx = keras.Input(shape, dtype=dtype)
    model = dj.Model(x, dj_layer(x))
    kmodel = keras.Model(kx, keras_layer(kx))
    if data is None:
        data = RNG.normal(size=(2, *shape)).astype(dtype)
    return model, kmodel, data


CASES = [
    (lambda m: m.Dense(3), (4,)),
    (lambda m: m.Dense(3, activation="gelu", use_bias=False), (2, 4)),
    (lambda m: m.Activation("softmax"), (5,)),
    (lambda m: m.Activation("leaky_relu"), (5,)),
    (lambda m: m.Activation("hard_sigmoid"), (5,)),
    (lambda m: m.Activation("selu"), (5,)),
    (lambda m: m.Flatten(), (2, 3, 2)),
    (lambda m: m.Reshape((3, -1)), (6, 2)),
    (lambda m: m.Permute((2, 1)), (3, 4)),
    (lambda m: m.RepeatVector(3), (4,)),
    (lambda m: m.Dropout(0.5), (4,)),
]


@pytest.mark.parametrize("make, shape", CASES)
def test_single_layer_matches_keras(make, shape):
    model, kmodel, data = single(make(layers), make(keras.layers), shape)
    assert_same_function(model, kmodel, data)
    assert_shape_invariant(model, data)
    assert model.output_shape == tuple(kmodel.output.shape)


def test_embedding_matches_keras():
    data = RNG.integers(0, 10, (2, 5)).astype("int32")
    model, kmodel, _ = single(layers.Embedding(10, 3), keras.layers.Embedding(10, 3), (5,), "int32", data)
    assert_same_function(model, kmodel, data)


def test_embedding_input_length_is_ignored_with_keras_warning():
    """Keras 2's ``input_length`` (DLwP 1st ed.'s listings): accepted with Keras 3's warning, not stored."""
    with pytest.warns(UserWarning) as ours:
        layer = layers.Embedding(10, 3, input_length=5)
    with pytest.warns(UserWarning) as theirs:
        keras.layers.Embedding(10, 3, input_length=5)
    assert str(ours[0].message) == str(theirs[0].message)
    assert "input_length" not in layer.get_config()


def test_lambda_layer():
    model, kmodel, data = single(
        layers.Lambda(lambda t: t * 2.0 + 1.0), keras.layers.Lambda(lambda t: t * 2.0 + 1.0), (3,)
    )
    assert_same_function(model, kmodel, data)


MERGES = [
    ("Add", {}),
    ("Subtract", {}),
    ("Multiply", {}),
    ("Average", {}),
    ("Maximum", {}),
    ("Minimum", {}),
    ("Concatenate", {"axis": -1}),
    ("Concatenate", {"axis": 1}),
    ("Dot", {"axes": -1}),
    ("Dot", {"axes": 2}),
    ("Dot", {"axes": (1, 1), "normalize": True}),
]


@pytest.mark.parametrize("name, kwargs", MERGES)
def test_merge_matches_keras(name, kwargs):
    shape = (3, 4)
    a, b = dj.Input(shape), dj.Input(shape)
    ka, kb = keras.Input(shape), keras.Input(shape)
    model = dj.Model([a, b], getattr(layers, name)(**kwargs)([a, b]))
    kmodel = keras.Model([ka, kb], getattr(keras.layers, name)(**kwargs)([ka, kb]))
    data = [RNG.normal(size=(2, *shape)).astype("float32") for _ in range(2)]
    assert_same_function(model, kmodel, data)
    assert model.output_shape == tuple(kmodel.output.shape)


def test_dot_on_vectors_keeps_a_unit_axis():
    a, b = dj.Input((4,)), dj.Input((4,))
    ka, kb = keras.Input((4,)), keras.Input((4,))
    model = dj.Model([a, b], layers.dot([a, b], axes=1))
    kmodel = keras.Model([ka, kb], keras.layers.dot([ka, kb], axes=1))
    data = [RNG.normal(size=(2, 4)).astype("float32") for _ in range(2)]
    assert_same_function(model, kmodel, data)
    assert model.output_shape == (None, 1)


def build_dag(lib, Input):
    """A DAG with fan-in, fan-out and a shared layer, built the same way in both libraries."""
    a, b = Input((6,), name="a"), Input((6,), name="b")
    shared = lib.Dense(5, activation="tanh", name="shared")
    left = lib.Dense(4, name="left")(shared(a))
    right = lib.Dense(4, name="right")(shared(b))
    skip = lib.Dense(4, name="skip")(a)
    merged = lib.add([left, right, skip], name="merge")
    head1 = lib.Dense(2, name="head1")(merged)
    head2 = lib.Dense(1, name="head2")(lib.concatenate([merged, b], name="cat"))
    return [a, b], [head1, head2]


def test_dag_layer_order_and_weights_match_keras():
    model = dj.Model(*build_dag(layers, dj.Input))
    kmodel = keras.Model(*build_dag(keras.layers, keras.Input))
    assert [lay.name for lay in model.layers] == [lay.name for lay in kmodel.layers]
    assert [w.shape for w in model.get_weights()] == [w.shape for w in kmodel.get_weights()]
    data = [RNG.normal(size=(3, 6)).astype("float32") for _ in range(2)]
    assert_same_function(model, kmodel, data)


def test_nested_model_weights_match_keras():
    def build(lib, Input, Model):
        inner_in = Input((3,))
        inner = Model(
            inner_in, lib.Dense(2, name="inner_dense")(lib.Dense(4, name="hidden")(inner_in)), name="inner"
        )
        x = Input((3,))
        y = lib.Dense(1, name="top")(lib.concatenate([inner(x), lib.Dense(2, name="side")(x)]))
        return Model(x, y)

    model = build(layers, dj.Input, dj.Model)
    kmodel = build(keras.layers, keras.Input, keras.Model)
    data = RNG.normal(size=(2, 3)).astype("float32")
    assert_same_function(model, kmodel, data)


@pytest.mark.parametrize(
    "name",
    [
        "glorot_uniform",
        "glorot_normal",
        "he_normal",
        "he_uniform",
        "lecun_normal",
        "orthogonal",
        "random_normal",
        "truncated_normal",
    ],
)
def test_initializer_statistics_match_keras(name):
    shape = (64, 48)
    keras.utils.set_random_seed(0)  # Keras draws from its global seed: fixed, so test order cannot move it
    ours = np.asarray(initializers.get(name)(__import__("jax").random.key(0), shape))
    theirs = np.asarray(keras.initializers.get(name)(shape, dtype="float32"))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.06)
    np.testing.assert_allclose(np.abs(ours).max(), np.abs(theirs).max(), rtol=0.2)


@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal", "orthogonal", "random_normal"])
def test_initializer_without_a_key_draws_from_the_default_seed(name):
    """``init(None, shape)``: Model.init's default key, the same values every call, as one Keras instance."""
    import jax

    from dagjax._naming import DEFAULT_SEED

    shape = (64, 48)
    ours, theirs = initializers.get(name), keras.initializers.get(name)
    values = np.asarray(ours(None, shape))
    np.testing.assert_array_equal(values, ours(jax.random.key(DEFAULT_SEED), shape))
    np.testing.assert_array_equal(values, ours(None, shape))
    np.testing.assert_array_equal(theirs(shape), theirs(shape))
    np.testing.assert_allclose(values.std(), np.asarray(theirs(shape)).std(), rtol=0.06)


def test_constant_initializers_match_keras():
    for name in ["zeros", "ones"]:
        ours = np.asarray(initializers.get(name)(None, (2, 3)))
        np.testing.assert_array_equal(ours, keras.initializers.get(name)((2, 3)))


@pytest.mark.parametrize("name", sorted(__import__("dagjax").activations.ACTIVATIONS))
def test_every_activation_matches_keras(name):
    x = np.append(np.linspace(-4, 4, 17), 0.25).astype("float32").reshape(1, 18)  # even: glu halves the axis
    ours = np.asarray(dj.activations.get(name)(x))
    np.testing.assert_allclose(ours, np.asarray(keras.activations.get(name)(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name, kwargs", [("L1", {"l1": 0.3}), ("L2", {"l2": 0.2}), ("L1L2", {"l1": 0.1, "l2": 0.4})]
)
def test_regularizers_match_keras(name, kwargs):
    w = RNG.normal(size=(3, 4)).astype("float32")
    ours = getattr(dj.regularizers, name)(**kwargs)(w)
    theirs = getattr(keras.regularizers, name)(**kwargs)(w)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_a_class_given_as_regularizer_or_initializer_is_instantiated_with_its_defaults_as_keras():
    w = RNG.normal(size=(3, 4)).astype("float32")
    ours = dj.regularizers.get(dj.regularizers.L2)
    theirs = keras.regularizers.get(keras.regularizers.L2)
    np.testing.assert_allclose(ours(w), theirs(w), rtol=1e-6)
    dense = layers.Dense(4, kernel_regularizer=dj.regularizers.L1, kernel_initializer=initializers.Ones)
    model = dj.Model(x := dj.Input((3,)), dense(x))
    np.testing.assert_array_equal(model.params[dense.name]["kernel"], np.ones((3, 4)))
    np.testing.assert_allclose(model.weight_penalty(model.params), keras.regularizers.L1()(np.ones((3, 4))))
    with pytest.raises(ValueError, match="Unknown regularizer class 'L3'. Valid: L1, L2, L1L2"):
        dj.regularizers.get({"class_name": "L3", "config": {}})


def test_keras_arguments_dagjax_lacks_are_accepted_at_their_defaults_and_refused_otherwise():
    built = [
        layers.Dense(3, kernel_constraint=None, bias_constraint=None, lora_rank=None),
        layers.BatchNormalization(synchronized=False, beta_constraint=None),
        layers.LSTM(3, use_cudnn="auto", recurrent_constraint=None),
        layers.Embedding(10, 3, weights=None, embeddings_constraint=None),
    ]
    for layer in built:  # the same layer as without them
        assert type(layer)(**{k: v for k, v in layer.get_config().items() if k != "name"}).get_config()
    with pytest.raises(NotImplementedError, match=r"Dense\(kernel_constraint=.*not support kernel_"):
        layers.Dense(3, kernel_constraint=keras.constraints.MaxNorm(2))
    with pytest.raises(NotImplementedError, match=r"Embedding\(weights=.*"):
        layers.Embedding(10, 3, weights=[np.zeros((10, 3))])
    with pytest.raises(TypeError, match=r"Dense\(\) got an unexpected keyword argument 'kernel_constrain'"):
        layers.Dense(3, kernel_constrain=None)


def test_a_model_with_open_dims_called_on_known_ones_gives_their_output_shapes_as_keras():
    """A fully convolutional model used as a layer on 8x8 images: its output is 6x6 there, so a Dense
    after a Flatten gets its kernel from the call, as in Keras (not the model's own (None, None) output)."""
    shapes = []
    for k in (keras, dj):
        inner_input = k.Input((None, None, 3))
        inner = k.Model(inner_input, k.layers.Conv2D(4, 3)(inner_input))
        x = k.Input((8, 8, 3))
        features = inner(x)
        outputs = k.layers.Dense(2)(k.layers.Flatten()(features))
        shapes.append((tuple(features.shape), tuple(outputs.shape), k.Model(x, outputs).count_params()))
    assert shapes[0] == shapes[1] == ((None, 6, 6, 4), (None, 2), 112 + 6 * 6 * 4 * 2 + 2)
