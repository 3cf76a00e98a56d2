"""Fixes found by running Keras's own code on dagjax (``benchmarks/keras_compat``), each against Keras 3.

The measure itself (the guides' examples and Keras's ``functional_test.py`` with only their
imports changed) is a benchmark, too slow for the suite; these are its findings, small.
"""

import copy

import jax.numpy as jnp
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import backend, layers


def test_embedding_reads_float_indices_as_keras_does():
    # The Functional API guide feeds Embedding from Input(shape=(None,)), whose dtype is float32:
    # Keras casts the indices to int32 (truncating), so dagjax does too.
    k_in = keras.Input((None,))
    k_model = keras.Model(k_in, keras.layers.Embedding(6, 3)(k_in))
    d_in = dj.Input((None,))
    d_model = dj.Model(d_in, layers.Embedding(6, 3)(d_in))
    d_model.set_weights(k_model.get_weights())
    x = np.array([[0.0, 1.0, 2.7, 5.0]], "float32")
    np.testing.assert_allclose(np.asarray(d_model(x)), np.asarray(k_model(x)), rtol=1e-6)


def _three_models_and_their_ensemble(lib):
    def get_model():
        inputs = lib.Input(shape=(4,))
        return lib.Model(inputs, lib.layers.Dense(1)(inputs))

    members = [get_model() for _ in range(3)]
    inputs = lib.Input(shape=(4,))
    outputs = lib.layers.average([m(inputs) for m in members])
    return members, lib.Model(inputs, outputs)


def test_a_nested_model_brings_its_own_weights():
    # "By calling a model you aren't just reusing the architecture of the model, you're also
    # reusing its weights" (the Functional API guide): the ensemble of three models averages
    # the three models' own outputs, in dagjax as in Keras.
    members, ensemble = _three_models_and_their_ensemble(dj)
    k_members, k_ensemble = _three_models_and_their_ensemble(keras)
    for member, k_member in zip(members, k_members):
        k_member.set_weights(member.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    got = np.asarray(ensemble(x))
    np.testing.assert_allclose(got, np.asarray(k_ensemble(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, np.mean([np.asarray(m(x)) for m in members], axis=0), rtol=1e-5)

    # Training the ensemble must leave the members' arrays usable (a donating step copies first).
    ensemble.compile(optimizer="sgd", loss="mse")
    ensemble.fit(x, np.zeros((5, 1), "float32"), epochs=1, verbose=0)
    assert np.asarray(members[0](x)).shape == (5, 1)


@pytest.mark.parametrize(
    "dtype", [None, int, float, bool, "float16", np.float64, jnp.bfloat16, np.dtype("int8"), "int64"]
)
def test_backend_standardize_dtype_as_keras(dtype):
    assert backend.standardize_dtype(dtype) == keras.backend.standardize_dtype(dtype)


def test_backend_answers_as_keras_on_jax():
    assert backend.backend() == keras.backend.backend() == "jax"
    assert backend.image_data_format() == keras.backend.image_data_format()
    assert backend.floatx() == keras.backend.floatx()
    assert backend.epsilon() == keras.backend.epsilon()
    assert backend.is_keras_tensor(dj.Input((2,))) and not backend.is_keras_tensor(np.zeros(2))
    assert dj.models.Functional is dj.Model and dj.KerasTensor is dj.SymbolicTensor


# A Keras 2 model config (as Keras 3 still reads it): [layer, call, output, kwargs] references.
_LEGACY_CONFIG = {
    "name": "legacy",
    "layers": [
        {
            "class_name": "InputLayer",
            "name": "input_1",
            "config": {"batch_input_shape": [None, 3], "dtype": "float32", "name": "input_1"},
            "inbound_nodes": [],
        },
        {
            "class_name": "Dense",
            "name": "hidden",
            "config": {"units": 4, "name": "hidden", "activation": "relu"},
            "inbound_nodes": [[["input_1", 0, 0, {}]]],
        },
        {
            "class_name": "Dense",
            "name": "out",
            "config": {"units": 2, "name": "out"},
            "inbound_nodes": [[["hidden", 0, 0, {}]]],
        },
    ],
    "input_layers": [["input_1", 0, 0]],
    "output_layers": [["out", 0, 0]],
}


def test_model_from_a_keras_2_config_as_keras():
    k_model = keras.Model.from_config(copy.deepcopy(_LEGACY_CONFIG))  # Keras's pops keys from it
    d_model = dj.Model.from_config(copy.deepcopy(_LEGACY_CONFIG))
    assert [layer.name for layer in d_model.layers] == [layer.name for layer in k_model.layers]
    d_model.set_weights(k_model.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(d_model(x)), np.asarray(k_model(x)), rtol=1e-5, atol=1e-6)


def test_broken_configs_say_what_is_wrong():
    missing = {**_LEGACY_CONFIG, "layers": _LEGACY_CONFIG["layers"][:1] + _LEGACY_CONFIG["layers"][2:]}
    with pytest.raises(ValueError, match="refers to layer 'hidden'.*Missing node: hidden"):
        dj.Model.from_config(missing)
    looped = [dict(entry) for entry in _LEGACY_CONFIG["layers"]]
    looped[1]["inbound_nodes"] = [[["out", 0, 0, {}]]]
    with pytest.raises(ValueError, match=r"never run.*\(a loop\).*'hidden', 'out'"):
        dj.Model.from_config({**_LEGACY_CONFIG, "layers": looped})


def test_keras_style_layer_that_states_its_output_is_not_traced_at_build():
    # Keras's functional_test.py test_training_arg: a layer whose compute_output_spec says its
    # output is not traced when called on symbolic tensors, so `training` reaches call as given.
    seen = []

    class Canary(layers.Layer):
        def call(self, x, training=False):
            seen.append(training)
            return x * 2.0

        def compute_output_spec(self, x, training=False):
            return backend.KerasTensor(x.shape, dtype=x.dtype)

    inputs = dj.Input(shape=(3,), batch_size=2)
    model = dj.Model(inputs, Canary()(inputs))
    assert seen == [] and model.output.shape == (2, 3)
    out = model(np.ones((2, 3), "float32"), training=True)
    np.testing.assert_allclose(np.asarray(out), 2 * np.ones((2, 3)))
    assert seen == [True]


def test_saving_namespace_round_trips_a_registered_layer(tmp_path):
    @dj.saving.register_keras_serializable(package="compat_test")
    class Scale(layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inputs = dj.Input((2,))
    model = dj.Model(inputs, Scale(3.0)(layers.Dense(2)(inputs)))
    serialized = dj.saving.serialize_keras_object(model)
    assert serialized["config"]["layers"][-1]["class_name"] == "compat_test>Scale"
    revived = dj.saving.deserialize_keras_object(serialized)
    assert revived.get_config() == model.get_config()
    path = str(tmp_path / "scaled.keras")
    model.save(path)
    x = np.ones((1, 2), "float32")
    np.testing.assert_allclose(np.asarray(dj.saving.load_model(path)(x)), np.asarray(model(x)), rtol=1e-6)
    with pytest.raises(TypeError, match="layer and model classes only.*custom_objects"):
        dj.saving.register_keras_serializable()(lambda y_true, y_pred: y_pred)


def test_an_extra_input_entry_is_dropped_with_keras_warning():
    # Keras's functional_test.py test_input_dict_with_extra_field: warned about once, then ignored.
    k_in, d_in = keras.Input((3,), name="a"), dj.Input((3,), name="a")
    k_model, d_model = keras.Model({"a": k_in}, k_in * 5 + 2), dj.Model({"a": d_in}, d_in * 5 + 2)
    data = {"a": np.ones((2, 3), "float32"), "b": np.ones((2, 1), "float32")}
    with pytest.warns(UserWarning, match=r"^The structure of `inputs` doesn't match the expected structure"):
        expected = np.asarray(k_model(data))
    with pytest.warns(UserWarning, match=r"^The structure of `inputs` doesn't match.*no inputs named \['b'"):
        got = np.asarray(d_model(data))
    np.testing.assert_allclose(got, expected)


def test_input_errors_carry_keras_words():
    inputs = dj.Input((4,))
    model = dj.Model(inputs, layers.Dense(2)(inputs))
    incompatible = r"Input '.*' of model '.*' is incompatible: expected shape"
    incompatible += r"=\(None, 4\), found shape=\(2, 3\)"
    with pytest.raises(ValueError, match=incompatible):
        model(np.zeros((2, 3), "float32"))
    # Two arrays for a one-input model are two inputs, not one nested list; Keras's words are kept.
    with pytest.raises(ValueError, match=r"a list of 2 arrays; model '.*' expects 1 named input\(s\)"):
        model([np.zeros((2, 4), "float32"), np.zeros((2, 4), "float32")])


def test_pydataset_workers_read_batches_in_threads_in_order():
    # The training guide's PyDataset(workers=4): threads read ahead, the batches keep their order,
    # so training matches Keras's reading them one by one (Keras's own threads may reorder them).
    import threading

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype("float32"), rng.normal(size=(40, 2)).astype("float32")

    def batches(base):
        class Batches(base):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.threads = set()

            def __len__(self):
                return 5

            def __getitem__(self, index):
                self.threads.add(threading.current_thread().name)
                return x[8 * index : 8 * index + 8], y[8 * index : 8 * index + 8]

        return Batches

    k_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    d_model = dj.Sequential([dj.Input((4,)), layers.Dense(2)])
    d_model.set_weights(k_model.get_weights())
    for model in (k_model, d_model):
        model.compile(optimizer="sgd", loss="mse")
    theirs = k_model.fit(batches(keras.utils.PyDataset)(), epochs=2, shuffle=False, verbose=0)
    data = batches(dj.utils.PyDataset)(workers=3, max_queue_size=2)
    ours = d_model.fit(data, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours.history["loss"], theirs.history["loss"], rtol=1e-5)
    assert any(name.startswith("Batches-reader") for name in data.threads)  # (fit peeks at one batch first)



def test_applications_build_keras_models_without_downloading():
    # The Functional API guide's VGG19 and functional_test.py's MobileNet. Building Keras's own takes
    # ~20 s of eager initialization, so the layer-for-layer parity (names, weight paths, outputs from
    # the same weights) is benchmarks/keras_compat/applications_parity.py; here: cheap facts.
    vgg = dj.applications.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3))
    assert vgg.output.shape == (None, 1, 1, 512) and len(vgg.weights) == 32
    net = dj.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=7)
    assert net.name == "mobilenet_0.25_32" and net.output.shape == (None, 7)
    xception = dj.applications.Xception(weights=None, include_top=False)  # DLwP 1st ed.'s shared base
    assert xception.input.shape == (None, None, None, 3) and len(xception.weights) == 234
    assert xception(dj.Input((71, 71, 3))).shape == (None, 3, 3, 2048)
    with pytest.raises(ValueError, match="at least 71x71"):
        dj.applications.Xception(weights=None, input_shape=(70, 70, 3))
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, size=(1, 4, 4, 3)).astype("float32")
    for ours, theirs in ((dj.applications.vgg19, keras.applications.vgg19),
                         (dj.applications.mobilenet, keras.applications.mobilenet),
                         (dj.applications.xception, keras.applications.xception)):
        np.testing.assert_allclose(ours.preprocess_input(image), theirs.preprocess_input(image.copy()),
                                   rtol=1e-6)
    with pytest.raises(ValueError, match="does not download weights"):
        dj.applications.VGG19()


def _optional_model(k):
    class AddIfGiven(k.layers.Layer):
        def call(self, x, y=None):
            return x if y is None else x + y

        def compute_output_shape(self, x_shape):  # one shape for a call of two: Keras passes the first
            return x_shape

    first, second = k.Input((2,), name="first"), k.Input((2,), name="second", optional=True)
    return k.Model({"first": first, "second": second}, AddIfGiven()(first, second))


def test_an_optional_input_may_be_given_none_as_in_keras(tmp_path):
    theirs, ours = _optional_model(keras), _optional_model(dj)
    ones = np.ones((2, 2), "float32")
    for given in ({"first": ones, "second": None}, {"first": ones, "second": 2 * ones}):
        np.testing.assert_allclose(ours(given), theirs(given))
    with pytest.warns(UserWarning, match="^The structure of `inputs` doesn't match"):  # as Keras: a list
        np.testing.assert_allclose(ours([ones, None]), theirs([ones, None]))  # for a dict, taken in order
    custom = {"AddIfGiven": type(ours.layers[-1])}
    assert dj.Model.from_config(ours.get_config(), custom_objects=custom).inputs[1].node.layer.optional
    with pytest.raises(ValueError, match="not optional"):
        ours({"first": None, "second": ones})
    with pytest.raises(NotImplementedError, match="fit, evaluate and predict take an array for every input"):
        ours.predict({"first": ones, "second": None}, verbose=0)


def test_outputs_given_as_a_tuple_come_back_as_a_tuple():
    inputs = dj.Input((3,))
    hidden = layers.Dense(5)(inputs)
    model = dj.Model(inputs, (layers.Dense(4)(hidden), layers.Dense(2)(hidden)))
    restored = dj.Model.from_config(model.get_config())
    x = np.ones((2, 3), "float32")
    assert isinstance(model(x), tuple) and isinstance(restored(x), tuple)
    assert isinstance(restored(dj.Input((3,))), tuple) and isinstance(model.predict(x, verbose=0), tuple)


def test_a_disconnected_output_is_named_by_its_path_and_layers_is_not_assignable():
    first, second = dj.Input((2,), name="first"), dj.Input((2,), name="second")
    with pytest.raises(ValueError, match="Output with path `late` is not connected. Graph disconnected"):
        dj.Model(first, {"early": first * 2, "late": second * 3})
    model = dj.Model(first, first * 2)
    with pytest.raises(AttributeError, match="`Model.layers` attribute is reserved"):
        model.layers = []


def _ranked(k):
    class Pairwise(k.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.input_spec = k.layers.InputSpec(ndim=3, axes={-1: 2})

        def call(self, x):
            return x[:, :, :1] * x[:, :, 1:]

    return Pairwise(name="pairwise")


def test_input_spec_refuses_what_keras_refuses_with_keras_words():
    cases = (((4,), "expected ndim=3, found ndim=2"), ((4, 3), "expected axis -1 of input shape"))
    for shape, words in cases:
        errors = []
        for k in (keras, dj):
            with pytest.raises(ValueError) as caught:
                _ranked(k)(k.Input(shape))
            errors.append(str(caught.value))
        assert words in errors[0] and words in errors[1], errors
    inputs = dj.Input((None, 3))
    model = dj.Model(inputs, layers.Dense(2)(inputs))
    model.input_spec = layers.InputSpec(shape=(None, 4, 3))
    with pytest.raises(ValueError, match=r"expected shape=\(None, 4, 3\), found shape=\(2, 3, 3\)"):
        model(np.zeros((2, 3, 3), "float32"))
    assert model(np.zeros((2, 4, 3), "float32")).shape == (2, 4, 2)
