"""Keras 3 ``.keras`` files, against real Keras both ways.

Keras's models load into dagjax with Keras's outputs, dagjax's models open in Keras with dagjax's
outputs, and a bad file is refused, naming what is wrong.
"""

import json
import os
import sys
import zipfile

import jax
import keras
import numpy as np
import pytest
from keras_parity import random_weights

import dagjax as dj
from dagjax import layers
from dagjax.io import CheckpointError, save_keras_model

L = keras.layers
RNG = np.random.default_rng(0)


def normal(*shape):
    return RNG.normal(size=shape).astype("float32")


def assert_same_outputs(got, expected):
    got, expected = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ Keras-built models
def keras_multi_io():
    a, b = keras.Input((6,), name="a"), keras.Input((3,), name="b")
    h = L.Dropout(0.3)(
        L.concatenate([L.Dense(5, activation="relu")(a), L.Dense(5)(b)])
    )  # records training=False
    outputs = [L.Dense(1, name="age")(h), L.Dense(4, activation="softmax", name="income")(h)]
    return keras.Model([a, b], outputs), [normal(4, 6), normal(4, 3)]


def keras_residual():
    a = keras.Input((6,))
    h = L.Add()([a, L.Dense(6)(L.Dense(6, activation="tanh")(a))])
    h = L.Add()([h, L.Dense(6)(L.Dense(6)(h))])  # four Dense of one shape: a mixed-up order shows
    return keras.Model(a, L.LayerNormalization()(h)), normal(4, 6)


def keras_shared():
    a, b = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    shared = L.Dense(4, activation="relu", name="shared")
    x, y = shared(a), shared(b)
    out = L.Concatenate()([L.Multiply()([x, y]), L.Maximum()([x, y]), L.Subtract()([x, y])])
    return keras.Model({"left": a, "right": b}, out), {"left": normal(4, 5), "right": normal(4, 5)}


def keras_nested():
    i = keras.Input((4,))
    inner = keras.Model(i, L.Dense(4, activation="tanh")(i), name="inner")
    stack = keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dropout(0.5), L.Dense(2)], name="stack")
    a = keras.Input((4,))
    h = inner(a)
    twice = inner(h)  # a nested functional model called twice: Keras counts its calls from 1
    outputs = {"twice": L.Dense(2, name="after")(twice), "once": h, "stacked": stack(twice)}
    return keras.Model(a, outputs), normal(4, 4)


def keras_sequential():
    model = keras.Sequential(
        [
            keras.Input((8, 3)),
            L.Conv1D(4, 3, padding="same", activation="relu"),
            L.MaxPooling1D(2),
            L.Flatten(),
            L.Reshape((4, 4)),
            L.GlobalAveragePooling1D(),
            L.Activation("sigmoid"),
            L.Dense(2),
        ]
    )
    return model, normal(4, 8, 3)


def keras_conv_bn():
    a = keras.Input((8, 8, 3))
    h = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(4, 3, padding="same")(a)))
    h = L.SeparableConv2D(6, 3, depth_multiplier=2)(h)
    h = L.BatchNormalization(momentum=0.9)(L.DepthwiseConv2D(3, padding="same")(h))
    h = L.GlobalMaxPooling2D()(L.AveragePooling2D(2)(L.MaxPooling2D(1)(h)))
    return keras.Model(a, L.Dense(3)(h)), normal(4, 8, 8, 3)


def keras_text():
    t = keras.Input((7,), dtype="int32")
    h = L.LayerNormalization()(L.Embedding(20, 6)(t))
    h = L.Average()([L.Conv1D(5, 2)(h), L.Conv1D(5, 2, dilation_rate=1)(h)])
    return keras.Model(t, L.Dense(2)(L.GlobalMaxPooling1D()(h))), RNG.integers(0, 20, (4, 7)).astype("int32")


def keras_recurrent():
    """Keras keeps an RNN's weights under its ``cell``, a wrapper's under its attribute names."""
    a = keras.Input((5, 3))
    h = L.Bidirectional(L.GRU(2, return_sequences=True))(L.LSTM(4, return_sequences=True)(a))
    return keras.Model(a, L.SimpleRNN(2)(L.TimeDistributed(L.Dense(3))(h))), normal(4, 5, 3)


KERAS_MODELS = [
    keras_multi_io,
    keras_residual,
    keras_shared,
    keras_nested,
    keras_sequential,
    keras_conv_bn,
    keras_text,
    keras_recurrent,
]


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory):
    """Each Keras model with random weights (BatchNormalization's moving statistics too), saved once."""
    made = {}
    for build in KERAS_MODELS:
        model, x = build()
        random_weights(model)
        path = tmp_path_factory.mktemp("keras") / f"{build.__name__}.keras"
        model.save(path)
        made[build.__name__] = model, x, path
    return made


@pytest.mark.parametrize("name", [build.__name__ for build in KERAS_MODELS])
def test_a_keras_file_loads_with_the_outputs_keras_gives(keras_models, name):
    model, x, path = keras_models[name]
    loaded = dj.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert_same_outputs(loaded(x), model(x, training=False))


@pytest.mark.parametrize("name", [build.__name__ for build in KERAS_MODELS])
def test_a_keras_model_goes_back_to_keras_through_dagjax(keras_models, name, tmp_path):
    model, x, path = keras_models[name]
    dj.load_model(path).save(tmp_path / "back.keras", format="keras")
    assert_same_outputs(keras.models.load_model(tmp_path / "back.keras")(x), model(x, training=False))


def test_a_keras_file_is_told_by_its_content_not_its_name(keras_models, tmp_path):
    model, x, path = keras_models["keras_residual"]
    renamed = tmp_path / "model.dj"
    renamed.write_bytes(path.read_bytes())
    assert_same_outputs(dj.load_model(renamed)(x), model(x))
    dagjax_file = tmp_path / "own.keras"
    dj.load_model(path).save(dagjax_file)  # the default format, whatever the extension
    assert "manifest.json" in zipfile.ZipFile(dagjax_file).namelist()
    assert_same_outputs(dj.load_model(dagjax_file)(x), model(x))


# ------------------------------------------------------------------ dagjax-built models
def dagjax_design_example():
    text, meta = dj.Input((None,), dtype="int32", name="text"), dj.Input((5,), name="meta")
    x = layers.GlobalMaxPooling1D()(layers.Conv1D(6, 3, activation="relu")(layers.Embedding(30, 4)(text)))
    h = layers.BatchNormalization()(layers.concatenate([x, layers.Dense(4, activation="relu")(meta)]))
    outputs = {
        "age": layers.Dense(1, name="age")(h),
        "income": layers.Dense(3, activation="softmax", name="income")(h),
    }
    x = {"text": RNG.integers(0, 30, (4, 9)).astype("int32"), "meta": normal(4, 5)}
    return dj.Model([text, meta], outputs), x


def dagjax_shared_nested():
    i = dj.Input((4,))
    inner = dj.Model(i, layers.Dense(4, activation="tanh")(i), name="inner")
    stack = dj.Sequential([dj.Input((4,)), layers.Dense(3), layers.Dropout(0.2)], name="stack")
    a, b = dj.Input((4,), name="a"), dj.Input((4,), name="b")
    shared = layers.Dense(4, name="shared")
    h = layers.add([shared(a), shared(inner(b))])
    return dj.Model([a, b], [stack(inner(h)), layers.Dense(2)(h)]), [normal(4, 4), normal(4, 4)]


def dagjax_residual_conv_bn():
    a = dj.Input((6, 6, 2))
    h = layers.BatchNormalization()(layers.Conv2D(2, 3, padding="same")(a))
    h = layers.Add()([a, layers.Activation("relu")(h)])
    h = layers.SeparableConv2D(3, 2)(layers.DepthwiseConv2D(2, padding="same")(h))
    return dj.Model(a, layers.Dense(2)(layers.Flatten()(layers.MaxPooling2D()(h)))), normal(4, 6, 6, 2)


def dagjax_sequential():
    model = dj.Sequential(
        [dj.Input((5,)), layers.Dense(4, activation="relu"), layers.LayerNormalization(), layers.Dense(2)]
    )
    return model, normal(4, 5)


def random_dagjax_weights(model):
    """Random values for every weight, positive for variances, so a weight in the wrong place shows."""
    rng = np.random.default_rng(1)
    values = []
    for (_, path), w in zip(model.weight_paths(), model.get_weights()):
        value = rng.normal(0.0, 0.5, w.shape)
        values.append((np.abs(value) + 0.5 if "variance" in path[-1] else value).astype(w.dtype))
    model.set_weights(values)


@pytest.mark.parametrize(
    "build", [dagjax_design_example, dagjax_shared_nested, dagjax_residual_conv_bn, dagjax_sequential]
)
def test_a_dagjax_model_opens_in_keras_with_the_same_outputs(build, tmp_path):
    model, x = build()
    random_dagjax_weights(model)
    model.save(tmp_path / "m.keras", format="keras")
    assert_same_outputs(keras.models.load_model(tmp_path / "m.keras")(x), model(x))
    save_keras_model(model, tmp_path / "public.keras")
    assert_same_outputs(dj.load_model(tmp_path / "public.keras")(x), model(x))


def test_an_unknown_format_is_refused(tmp_path):
    model, _ = dagjax_sequential()
    with pytest.raises(ValueError, match="format is 'dagjax' or 'keras', got 'h5'"):
        model.save(tmp_path / "m.h5", format="h5")
    assert not (tmp_path / "m.h5").exists()


class Scaled(layers.Dense):
    """A custom layer: Keras has no class of this name."""


@pytest.mark.parametrize(
    "make, refused",
    [
        (
            lambda: layers.Lambda(jax.numpy.tanh, name="odd"),
            "layer 'odd' \\(Lambda\\) to a Keras file: it is a Lambda",
        ),
        (
            lambda: Scaled(3, name="odd"),
            "layer 'odd' \\(Scaled\\) to a Keras file: it is not a class Keras has",
        ),
        (lambda: layers.TimeDistributed(Scaled(3), name="odd"), "layer 'scaled' \\(Scaled\\)"),
    ],
    ids=["lambda", "custom", "custom-wrapped"],
)
def test_a_layer_keras_has_no_class_for_is_refused_by_name_and_nothing_is_written(make, refused, tmp_path):
    a = dj.Input((2, 3))
    model = dj.Model(a, make()(layers.Dense(3)(a)))
    target = tmp_path / "m.keras"
    target.write_bytes(b"the previous file")
    with pytest.raises(ValueError, match=refused):
        model.save(target, format="keras")
    assert target.read_bytes() == b"the previous file"


def test_a_save_that_fails_midway_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    model, _ = dagjax_sequential()
    target = tmp_path / "m.keras"
    target.write_bytes(b"the previous file")

    def fail(self, name, data, *args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail)
    with pytest.raises(OSError, match="disk gone"):
        model.save(target, format="keras")
    assert target.read_bytes() == b"the previous file"
    assert os.listdir(tmp_path) == ["m.keras"]


# ------------------------------------------------------------------ bad files
def members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rewrite(path, contents, deflated=()):
    """A zip of ``contents``, the members named in ``deflated`` compressed (as Keras's writer may)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in contents.items():
            zf.writestr(name, data, zipfile.ZIP_DEFLATED if name in deflated else zipfile.ZIP_STORED)


def edited_config(path, edit):
    contents = members(path)
    config = json.loads(contents["config.json"])
    edit(config["config"]["layers"])
    contents["config.json"] = json.dumps(config)
    rewrite(path, contents)


@pytest.fixture
def small_file(keras_models, tmp_path):
    """A copy of the multi-input model's file, free to damage."""
    copy = tmp_path / "small.keras"
    copy.write_bytes(keras_models["keras_multi_io"][2].read_bytes())
    return copy


def test_an_old_tf_keras_key_is_refused_naming_it_and_the_layer(small_file):
    def old_input(entries):
        entries[0]["config"]["batch_input_shape"] = entries[0]["config"].pop("batch_shape")

    edited_config(small_file, old_input)
    with pytest.raises(
        CheckpointError, match="layer '(a|b)' \\(InputLayer\\) has the key 'batch_input_shape'"
    ):
        dj.load_model(small_file)


def test_a_class_dagjax_lacks_is_refused_naming_it_and_the_layer(small_file):
    def attention(entries):  # a Keras layer dagjax has no class for (yet)
        entries[-1]["class_name"] = "GroupedQueryAttention"
        entries[-1]["config"] = {"name": "income", "head_dim": 2, "num_query_heads": 4}

    edited_config(small_file, attention)
    with pytest.raises(CheckpointError, match="layer 'income' is a Keras GroupedQueryAttention"):
        dj.load_model(small_file)


def test_an_unsupported_argument_value_is_refused_naming_it(small_file):
    def sparse_input(entries):
        entries[0]["config"]["sparse"] = True

    edited_config(small_file, sparse_input)
    with pytest.raises(CheckpointError, match="has sparse=True; dagjax does not support sparse"):
        dj.load_model(small_file)


@pytest.mark.parametrize(
    "damage",
    [
        lambda entries: entries[2]["inbound_nodes"][0]["args"][0]["config"].pop("keras_history"),
        lambda entries: entries[2]["inbound_nodes"][0]["args"][0]["config"].update(keras_history=["a", 7, 0]),
        lambda entries: entries[2].update(inbound_nodes=[[["a", 0, 0, {}]]]),  # tf.keras 2's form
        lambda entries: entries.pop(0),
    ],
    ids=["no-history", "no-such-call", "old-call-form", "missing-input"],
)
def test_a_malformed_config_is_a_checkpoint_error(small_file, damage):
    edited_config(small_file, damage)
    with pytest.raises(CheckpointError, match=str(small_file)):
        dj.load_model(small_file)


def test_a_damaged_weights_member_is_refused(small_file):
    data = bytearray(small_file.read_bytes())
    at = data.index(b"\x89HDF") + 3000  # a byte inside model.weights.h5, past its first records
    data[at] ^= 0xFF
    small_file.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="not a complete Keras file: its member 'model.weights.h5'"):
        dj.load_model(small_file)


def test_an_oversized_weights_member_is_refused_unread(small_file, monkeypatch):
    contents = members(small_file)
    contents["model.weights.h5"] = bytes(64 * 2**20)  # 64 MiB that deflate to 64 KiB
    rewrite(small_file, contents, deflated=["model.weights.h5"])
    plain = zipfile._get_decompressor

    def inflate(method):
        assert method == zipfile.ZIP_STORED, "the deflated member was inflated"
        return plain(method)

    monkeypatch.setattr(zipfile, "_get_decompressor", inflate)
    with pytest.raises(CheckpointError, match="'model.weights.h5' declares 67108864 bytes, more than the"):
        dj.load_model(small_file)


def test_a_weight_of_another_shape_is_refused_naming_it(small_file, keras_models, tmp_path):
    import h5py

    contents = members(small_file)
    (tmp_path / "w.h5").write_bytes(contents["model.weights.h5"])
    with h5py.File(tmp_path / "w.h5", "r+") as f:
        del f["layers/dense_2/vars/0"]  # the "age" layer's kernel, (10, 1)
        f["layers/dense_2/vars/0"] = np.zeros((10, 2), "float32")
    contents["model.weights.h5"] = (tmp_path / "w.h5").read_bytes()
    rewrite(small_file, contents)
    with pytest.raises(
        CheckpointError, match=r"weight 'age/kernel' .* is \(10, 2\) float32 in the file, \(10, 1\)"
    ):
        dj.load_model(small_file)


def test_a_link_or_a_non_numeric_dataset_is_refused(small_file, tmp_path):
    import h5py

    contents = members(small_file)
    for damage, refused in [
        ("link", "links 'layers/dense_2/vars/0' elsewhere"),
        ("text", "not a plain numeric"),
    ]:
        (tmp_path / "w.h5").write_bytes(contents["model.weights.h5"])
        with h5py.File(tmp_path / "w.h5", "r+") as f:
            del f["layers/dense_2/vars/0"]
            if damage == "link":
                f["layers/dense_2/vars/0"] = h5py.SoftLink("/layers/dense_2/vars/1")
            else:
                f["layers/dense_2/vars/0"] = np.array(["x"] * 10, dtype=h5py.string_dtype())
        rewrite(small_file, {**contents, "model.weights.h5": (tmp_path / "w.h5").read_bytes()})
        with pytest.raises(CheckpointError, match=refused):
            dj.load_model(small_file)


def test_without_h5py_the_message_says_what_to_install(small_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(ImportError, match=r"pip install dagjax\[keras-files\]"):
        dj.load_model(small_file)
    model, _ = dagjax_sequential()
    with pytest.raises(ImportError, match=r"pip install dagjax\[keras-files\]"):
        model.save(small_file.parent / "new.keras", format="keras")


def test_deflated_members_load_as_keras_loads_them(small_file, keras_models):
    model, x, _ = keras_models["keras_multi_io"]
    contents = members(small_file)
    rewrite(small_file, contents, deflated=list(contents))
    assert_same_outputs(dj.load_model(small_file)(x), model(x))
