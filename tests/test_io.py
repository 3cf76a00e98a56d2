"""Model files and weight checkpoints: round trips, checked loading, atomic writes, no code from files."""

import functools
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.io import CheckpointError, layer_to_config, read_archive, write_archive
from dagjax.layers import _registry
from dagjax.layers._base import Layer


def double(x, k=2):
    return x * k


# class name -> (layer factory, input shapes without batch dim, input dtype, custom_objects)
# Arguments are non-default where possible, so a get_config that drops one shows up.
F = "float32"
LAYER_CASES = {
    "Activation": (lambda: layers.Activation("tanh"), [(4,)], F, None),
    "Dense": (lambda: layers.Dense(3, "relu", use_bias=False, kernel_regularizer="l2"), [(4,)], F, None),
    "Dropout": (lambda: layers.Dropout(0.3, noise_shape=(None, 1), seed=3), [(4,)], F, None),
    "Embedding": (lambda: layers.Embedding(10, 3), [(5,)], "int32", None),
    "Lambda": (lambda: layers.Lambda(double, arguments={"k": 3}), [(4,)], F, {"double": double}),
    "Add": (layers.Add, [(3,), (3,)], F, None),
    "Average": (layers.Average, [(3,), (3,)], F, None),
    "Maximum": (layers.Maximum, [(3,), (3,)], F, None),
    "Minimum": (layers.Minimum, [(3,), (3,)], F, None),
    "Multiply": (layers.Multiply, [(3,), (3,)], F, None),
    "Subtract": (layers.Subtract, [(3,), (3,)], F, None),
    "Concatenate": (lambda: layers.Concatenate(axis=1), [(2, 3), (1, 3)], F, None),
    "Dot": (lambda: layers.Dot(axes=1, normalize=True), [(3,), (3,)], F, None),
    "Flatten": (layers.Flatten, [(2, 3)], F, None),
    "Permute": (lambda: layers.Permute((2, 1)), [(2, 3)], F, None),
    "RepeatVector": (lambda: layers.RepeatVector(3), [(4,)], F, None),
    "Reshape": (lambda: layers.Reshape((3, 2)), [(6,)], F, None),
    "Conv1D": (lambda: layers.Conv1D(2, 3, strides=2, padding="same", activation="relu"), [(8, 3)], F, None),
    "Conv1DTranspose": (lambda: layers.Conv1DTranspose(2, 3, strides=2, padding="same"), [(5, 3)], F, None),
    "Conv2D": (lambda: layers.Conv2D(2, (3, 2), strides=(2, 1), padding="same"), [(6, 5, 2)], F, None),
    "Conv2DTranspose": (lambda: layers.Conv2DTranspose(2, 2, strides=2), [(3, 3, 2)], F, None),
    "Conv3D": (lambda: layers.Conv3D(2, 2, groups=2), [(4, 4, 4, 2)], F, None),
    "Conv3DTranspose": (lambda: layers.Conv3DTranspose(2, 2, strides=(1, 2, 1)), [(3, 3, 3, 2)], F, None),
    "DepthwiseConv1D": (lambda: layers.DepthwiseConv1D(3, depth_multiplier=2), [(6, 2)], F, None),
    "DepthwiseConv2D": (lambda: layers.DepthwiseConv2D(2, depth_multiplier=2, padding="same"), [(4, 4, 2)], F,
                        None),
    "SeparableConv1D": (lambda: layers.SeparableConv1D(3, 3, depth_multiplier=2), [(6, 2)], F, None),
    "SeparableConv2D": (lambda: layers.SeparableConv2D(3, 2, strides=2), [(4, 4, 2)], F, None),
    "Cropping1D": (lambda: layers.Cropping1D((1, 2)), [(6, 2)], F, None),
    "Cropping2D": (lambda: layers.Cropping2D(((1, 0), (0, 1))), [(4, 4, 2)], F, None),
    "Cropping3D": (lambda: layers.Cropping3D(((1, 0), (0, 1), (1, 1))), [(4, 4, 4, 1)], F, None),
    "UpSampling1D": (lambda: layers.UpSampling1D(3), [(3, 2)], F, None),
    "UpSampling2D": (lambda: layers.UpSampling2D((2, 1), interpolation="bilinear"), [(3, 3, 2)], F, None),
    "ZeroPadding1D": (lambda: layers.ZeroPadding1D((1, 2)), [(3, 2)], F, None),
    "ZeroPadding2D": (lambda: layers.ZeroPadding2D(((1, 0), (2, 1))), [(3, 3, 1)], F, None),
    "ZeroPadding3D": (lambda: layers.ZeroPadding3D(2), [(2, 2, 2, 1)], F, None),
    "AveragePooling1D": (lambda: layers.AveragePooling1D(2, strides=1, padding="same"), [(5, 2)], F, None),
    "AveragePooling2D": (lambda: layers.AveragePooling2D((2, 2), padding="same"), [(5, 5, 1)], F, None),
    "AveragePooling3D": (lambda: layers.AveragePooling3D(2), [(4, 4, 4, 1)], F, None),
    "MaxPooling1D": (lambda: layers.MaxPooling1D(3, strides=2), [(7, 2)], F, None),
    "MaxPooling2D": (lambda: layers.MaxPooling2D((2, 3)), [(6, 6, 1)], F, None),
    "MaxPooling3D": (lambda: layers.MaxPooling3D(2, padding="same"), [(3, 3, 3, 1)], F, None),
    "GlobalAveragePooling1D": (lambda: layers.GlobalAveragePooling1D(keepdims=True), [(5, 2)], F, None),
    "GlobalAveragePooling2D": (lambda: layers.GlobalAveragePooling2D(keepdims=True), [(3, 3, 2)], F, None),
    "GlobalAveragePooling3D": (lambda: layers.GlobalAveragePooling3D(), [(2, 2, 2, 2)], F, None),
    "GlobalMaxPooling1D": (lambda: layers.GlobalMaxPooling1D(keepdims=True), [(5, 2)], F, None),
    "GlobalMaxPooling2D": (lambda: layers.GlobalMaxPooling2D("channels_first"), [(2, 3, 3)], F, None),
    "GlobalMaxPooling3D": (lambda: layers.GlobalMaxPooling3D(keepdims=True), [(2, 2, 2, 2)], F, None),
    "BatchNormalization": (lambda: layers.BatchNormalization(momentum=0.9, epsilon=0.01, center=False),
                           [(4,)], F, None),
    "LayerNormalization": (lambda: layers.LayerNormalization(epsilon=0.01, center=False), [(2, 4)], F, None),
    "SimpleRNN": (lambda: layers.SimpleRNN(3, "relu", return_sequences=True, go_backwards=True), [(4, 2)], F,
                  None),
    "GRU": (lambda: layers.GRU(3, reset_after=False, return_sequences=True), [(4, 2)], F, None),
    "LSTM": (lambda: layers.LSTM(3, unit_forget_bias=False, return_state=True), [(4, 2)], F, None),
    "Bidirectional": (lambda: layers.Bidirectional(layers.LSTM(2, return_sequences=True), merge_mode="sum"),
                      [(4, 2)], F, None),
    "TimeDistributed": (lambda: layers.TimeDistributed(layers.Dense(2, activation="relu")), [(3, 4)], F,
                        None),
    "ReLU": (lambda: layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.2), [(4,)], F, None),
    "LeakyReLU": (lambda: layers.LeakyReLU(negative_slope=0.05), [(4,)], F, None),
    "ELU": (lambda: layers.ELU(alpha=0.5), [(4,)], F, None),
    "Softmax": (lambda: layers.Softmax(axis=[1, 2]), [(2, 3)], F, None),
    "PReLU": (lambda: layers.PReLU(alpha_initializer="ones", alpha_regularizer="l2", shared_axes=[1]),
              [(2, 3)], F, None),
    "GaussianNoise": (lambda: layers.GaussianNoise(0.2, seed=1), [(4,)], F, None),
    "GaussianDropout": (lambda: layers.GaussianDropout(0.2, seed=1), [(4,)], F, None),
    "AlphaDropout": (lambda: layers.AlphaDropout(0.2, noise_shape=(None, 1), seed=1), [(4,)], F, None),
    "SpatialDropout1D": (lambda: layers.SpatialDropout1D(0.2, seed=1), [(3, 4)], F, None),
    "SpatialDropout2D": (lambda: layers.SpatialDropout2D(0.2, "channels_first"), [(2, 3, 3)], F, None),
    "SpatialDropout3D": (lambda: layers.SpatialDropout3D(0.2), [(2, 2, 2, 3)], F, None),
    "UnitNormalization": (lambda: layers.UnitNormalization(axis=[1, 2]), [(2, 3)], F, None),
    "GroupNormalization": (lambda: layers.GroupNormalization(groups=2, axis=1, epsilon=0.01, center=False),
                           [(4, 3)], F, None),
    "Normalization": (lambda: layers.Normalization(axis=(1, 2), invert=True), [(2, 3)], F, None),
    "Rescaling": (lambda: layers.Rescaling([0.5, 2.0], offset=1.0), [(2, 2)], F, None),
    "Resizing": (lambda: layers.Resizing(2, 3, interpolation="nearest", crop_to_aspect_ratio=True),
                 [(4, 4, 1)], F, None),
    "CenterCrop": (lambda: layers.CenterCrop(2, 3, data_format="channels_first"), [(1, 4, 4)], F, None),
    "RandomFlip": (lambda: layers.RandomFlip("vertical", seed=2), [(3, 3, 1)], F, None),
    "RandomRotation": (lambda: layers.RandomRotation((-0.1, 0.2), fill_mode="wrap"), [(3, 3, 1)], F, None),
    "RandomZoom": (lambda: layers.RandomZoom(0.2, (-0.1, 0.1), interpolation="nearest"), [(3, 3, 1)], F,
                   None),
    "RandomTranslation": (lambda: layers.RandomTranslation(0.1, 0.2, fill_value=1.0), [(3, 3, 1)], F, None),
    "RandomContrast": (lambda: layers.RandomContrast((0.1, 0.3), value_range=(0, 1)), [(3, 3, 1)], F, None),
    "CategoryEncoding": (lambda: layers.CategoryEncoding(12, output_mode="count"), [(3,)], "int32", None),
    "Discretization": (lambda: layers.Discretization([2.0, 5.0], output_mode="one_hot"), [(3,)], F, None),
    "Hashing": (lambda: layers.Hashing(7, mask_value=0, salt=(1, 2)), [(3,)], "int32", None),
    "IntegerLookup": (lambda: layers.IntegerLookup(vocabulary=[3, 5], mask_token=0, num_oov_indices=2),
                      [(3,)], "int32", None),
    "Masking": (lambda: layers.Masking(mask_value=0.5), [(3, 4)], F, None),
    "Attention": (lambda: layers.Attention(use_scale=True, score_mode="concat", dropout=0.1),
                  [(3, 4), (5, 4)], F, None),
    "AdditiveAttention": (lambda: layers.AdditiveAttention(use_scale=False), [(3, 4), (5, 4)], F, None),
    "MultiHeadAttention": (
        lambda: layers.MultiHeadAttention(2, 3, value_dim=2, output_shape=5, use_bias=False),
        [(3, 4), (5, 4)], F, None,
    ),
}
# Layers called otherwise than on their one input or list of inputs: keyword options are recorded too.
LAYER_CALLS = {
    "MultiHeadAttention": lambda layer, xs: layer(*xs, return_attention_scores=True, use_causal_mask=True),
}
REFUSED_LAYERS = {"StringLookup", "TextVectorization"}  # strings cannot enter the compiled program


def public_layer_classes():
    return {
        name for name, obj in vars(layers).items()
        if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer
    }


def randomize(model, seed=0):
    """Non-trivial weights without compiling an init (positive, so variances stay valid)."""
    rng = np.random.default_rng(seed)
    fill = lambda s: jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype)
    model._params = jax.tree.map(fill, model.abstract_weights(trainable=True))
    model._state = jax.tree.map(fill, model.abstract_weights(trainable=False))


def sample(shapes, dtype, seed=1, batch=2):
    rng = np.random.default_rng(seed)
    if dtype == "int32":
        return [rng.integers(0, 10, (batch, *s)).astype(dtype) for s in shapes]
    return [rng.normal(size=(batch, *s)).astype(dtype) for s in shapes]


def assert_same_outputs(a, b, x):
    out_a, _ = a.apply(a.params, a.state, x)
    out_b, _ = b.apply(b.params, b.state, x)
    as_list = lambda out: list(out) if isinstance(out, tuple) else out  # files keep no tuples, as Keras's
    assert jax.tree.structure(as_list(out_a)) == jax.tree.structure(as_list(out_b))
    for u, v in zip(jax.tree.leaves(out_a), jax.tree.leaves(out_b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def as_json(config):
    return json.loads(json.dumps(config))


@pytest.fixture
def registry():
    """Restore the custom-layer registry after a test that registers classes."""
    saved = dict(_registry._REGISTERED)
    yield
    _registry._REGISTERED.clear()
    _registry._REGISTERED.update(saved)


# ------------------------------------------------------------------ every layer round-trips
def test_every_public_layer_class_has_a_round_trip_case():
    # InputLayer is in every case's model.
    missing = public_layer_classes() - set(LAYER_CASES) - {"InputLayer"} - REFUSED_LAYERS
    assert not missing, f"add these layer classes to LAYER_CASES: {sorted(missing)}"


@pytest.mark.parametrize("class_name", sorted(LAYER_CASES))
def test_layer_round_trips_through_a_model_file(class_name, tmp_path):
    make, shapes, dtype, custom_objects = LAYER_CASES[class_name]
    inputs = [dj.Input(s, dtype=dtype) for s in shapes]
    layer = make()
    assert type(layer).__name__ == class_name
    call = LAYER_CALLS.get(class_name, lambda layer, xs: layer(xs if len(xs) > 1 else xs[0]))
    model = dj.Model(inputs, call(layer, inputs))
    randomize(model)
    model.save(tmp_path / "m.dj")
    loaded = dj.load_model(tmp_path / "m.dj", custom_objects=custom_objects)
    assert as_json(layer_to_config(loaded)) == as_json(layer_to_config(model))
    assert [type(x).__name__ for x in loaded.layers] == [type(x).__name__ for x in model.layers]
    assert_same_outputs(model, loaded, sample(shapes, dtype))


def test_layer_dtype_and_activity_regularizer_survive_the_file(tmp_path):
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(2, dtype="float16", activity_regularizer="l1", name="half")(x))
    model.save(tmp_path / "h.dj")
    loaded = dj.load_model(tmp_path / "h.dj").get_layer("half")
    assert loaded.dtype == np.dtype("float16")
    assert loaded.get_config() == model.get_layer("half").get_config()


# ------------------------------------------------------------------ whole models
def dag_model():
    """Dict inputs and outputs, a shared layer, BatchNormalization state, nested functional and Sequential."""
    a = dj.Input((4,), name="a")
    b = dj.Input((3,), name="b")
    shared = layers.Dense(5, activation="relu", name="shared")
    h1, h2 = shared(a), shared(layers.Dense(4)(b))
    h = layers.BatchNormalization()(layers.concatenate([h1, h2]))
    inner_in = dj.Input((10,))
    inner = dj.Model(inner_in, [layers.Dense(2)(inner_in), layers.Dense(1)(inner_in)], name="inner")
    stack = dj.Sequential([dj.Input((5,)), layers.Dense(3, activation="tanh"), layers.Dense(2)], name="stack")
    y1, y2 = inner(h)
    return dj.Model({"b": b, "a": a}, {"z": stack(h1), "y": layers.add([y1, y2]), "x": y1})


def test_functional_dag_round_trip_keeps_structure_order_and_outputs(tmp_path):
    model = dag_model()
    randomize(model)
    model.save(tmp_path / "dag.dj")
    loaded = dj.load_model(tmp_path / "dag.dj")
    assert loaded.name == model.name
    assert loaded.input_names == ["a", "b"] and loaded.output_names == ["x", "y", "z"]  # sorted, as Keras
    assert list(loaded.input) == ["b", "a"] and list(loaded.output) == ["z", "y", "x"]
    assert [x.name for x in loaded.layers] == [x.name for x in model.layers]
    assert [x.shape for x in loaded.outputs] == [x.shape for x in model.outputs]
    for u, v in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(u, v)
    x = {"a": np.ones((3, 4), "float32"), "b": np.full((3, 3), -0.5, "float32")}
    assert_same_outputs(model, loaded, x)
    assert isinstance(loaded.get_layer("stack"), dj.Sequential)


def test_sequential_round_trip_and_weights_files(tmp_path):
    model = dj.Sequential([dj.Input((3,)), layers.Dense(4, activation="relu"), layers.Dropout(0.5),
                           layers.Dense(2)], name="seq")
    randomize(model, seed=3)
    model.save(tmp_path / "seq.dj")
    loaded = dj.load_model(tmp_path / "seq.dj")
    assert isinstance(loaded, dj.Sequential) and len(loaded.layers) == 3
    assert_same_outputs(model, loaded, np.ones((2, 3), "float32"))

    model.save_weights(tmp_path / "seq.weights")
    with pytest.raises(CheckpointError, match="weights only"):
        dj.load_model(tmp_path / "seq.weights")


def test_weights_load_by_structure_or_by_layer_name(tmp_path):
    def build():
        return dj.Sequential([dj.Input((3,)), layers.Dense(4), layers.BatchNormalization(), layers.Dense(2)])

    model = build()
    randomize(model, seed=4)
    model.save_weights(tmp_path / "w.dj")
    dj.clear_session()
    same_names = build()
    same_names.load_weights(tmp_path / "w.dj", by_name=True)
    assert_same_outputs(model, same_names, np.ones((2, 3), "float32"))

    built_again = build()  # same session: auto-names move on (dense_2, ...); structure is what matches
    with pytest.raises(CheckpointError, match=r"missing from the file: params/dense_2/kernel.*"
                                              r"fit this model's structure.*leave by_name=False"):
        built_again.load_weights(tmp_path / "w.dj", by_name=True)
    built_again.load_weights(tmp_path / "w.dj")
    assert_same_outputs(model, built_again, np.ones((2, 3), "float32"))

    smaller = dj.Sequential([dj.Input((3,)), layers.Dense(4), layers.Dense(2)])
    with pytest.raises(CheckpointError, match="the file has 8 weights, the model 4"):
        smaller.load_weights(tmp_path / "w.dj")


def test_structure_matching_checks_the_class_of_each_weights_layer(tmp_path):
    dense = dj.Sequential([dj.Input((3,)), layers.Dense(4, use_bias=False)])
    dense.save_weights(tmp_path / "w.dj")
    embedding = dj.Sequential([dj.Input((3,), dtype="int32"), layers.Embedding(3, 4)])
    before = embedding.get_weights()
    with pytest.raises(CheckpointError, match=r"weight 0: file params/dense\w*/kernel \(3, 4\) float32 of a "
                                              r"Dense, model params/embedding\w*/embeddings \(3, 4\) float32 "
                                              r"of a Embedding"):
        embedding.load_weights(tmp_path / "w.dj")
    np.testing.assert_array_equal(embedding.get_weights()[0], before[0])


# ------------------------------------------------------------------ training continues exactly
def trainable_model():
    x = dj.Input((6,))
    h = layers.Dense(8, activation="relu")(x)
    h = layers.BatchNormalization()(layers.Dropout(0.2)(h))
    return dj.Model(x, layers.Dense(1)(h))


def test_save_load_continues_training_identically(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 6)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    fit = dict(batch_size=8, epochs=1, verbose=0)
    model = trainable_model()
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, **fit)
    model.save(tmp_path / "run.dj")
    model.fit(x, y, **fit)

    resumed = dj.load_model(tmp_path / "run.dj")  # compiled as saved, with its optimizer state and step
    resumed.fit(x, y, **fit)
    recompiled = dj.load_model(tmp_path / "run.dj", compile=False)
    assert not recompiled.compiled
    recompiled.compile(optimizer="adam", loss="mse")
    recompiled.load_weights(tmp_path / "run.dj")
    recompiled.fit(x, y, **fit)
    for again in (resumed, recompiled):
        assert int(again.fit_session.iterations) == int(model.fit_session.iterations) == 8
        for tree in ("params", "state", "opt_state"):
            for u, v in zip(jax.tree.leaves(getattr(model, tree)), jax.tree.leaves(getattr(again, tree))):
                np.testing.assert_array_equal(np.asarray(u), np.asarray(v))

    other = dj.load_model(tmp_path / "run.dj", compile=False)
    other.compile(optimizer="sgd", loss="mse")
    before = other.get_weights()
    with pytest.raises(CheckpointError, match=r"optimizer state .* does not fit .*skip_optimizer=True"):
        other.load_weights(tmp_path / "run.dj")
    np.testing.assert_array_equal(other.get_weights()[0], before[0])
    other.load_weights(tmp_path / "run.dj", skip_optimizer=True)


# ------------------------------------------------------------------ checked loading
def test_loading_into_a_different_model_names_every_difference(tmp_path):
    x = dj.Input((4,))
    model = dj.Model(x, layers.Dense(2, name="head")(layers.Dense(3, name="body")(x)))
    model.save_weights(tmp_path / "w.dj")

    y = dj.Input((4,))
    wider = dj.Model(y, layers.Dense(2, name="head")(layers.Dense(5, name="body")(y)))
    before = wider.get_weights()
    with pytest.raises(CheckpointError) as err:
        wider.load_weights(tmp_path / "w.dj")
    message = str(err.value)
    assert "file params/body/kernel (4, 3) float32 of a Dense, model params/body/kernel (4, 5)" in message
    assert "file params/head/kernel (3, 2) float32 of a Dense, model params/head/kernel (5, 2)" in message
    with pytest.raises(CheckpointError) as err:
        wider.load_weights(tmp_path / "w.dj", by_name=True)
    assert "params/body/kernel: file (4, 3) float32, model (4, 5) float32" in str(err.value)
    assert "params/head/kernel: file (3, 2) float32, model (5, 2) float32" in str(err.value)
    for u, v in zip(wider.get_weights(), before):
        np.testing.assert_array_equal(u, v)

    z = dj.Input((4,))
    renamed = dj.Model(z, layers.Dense(2, name="head")(layers.Dense(3, name="trunk")(z)))
    with pytest.raises(CheckpointError, match=r"missing from the file: params/trunk/kernel \(4, 3\).*"
                                              r"in the file but not in the model: params/body/kernel"):
        renamed.load_weights(tmp_path / "w.dj", by_name=True)
    renamed.load_weights(tmp_path / "w.dj")  # same structure, other names
    assert_same_outputs(model, renamed, np.ones((2, 4), "float32"))


@pytest.fixture
def saved(tmp_path):
    x = dj.Input((4,))
    model = dj.Model(x, layers.Dense(300)(x))
    model.params = {"dense": {"kernel": jnp.full((4, 300), 7.25), "bias": jnp.zeros(300)}}
    path = tmp_path / "m.dj"
    model.save(path)
    return path


@pytest.mark.parametrize("keep", [0.5, 0.98, 0.0])
def test_truncated_file_is_a_clear_error(saved, keep):
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="not a complete dagjax file.*truncated"):
        dj.load_model(saved)


def test_corrupted_byte_is_caught_by_the_checksum(saved):
    data = bytearray(saved.read_bytes())
    at = data.index(np.full(8, 7.25, "float32").tobytes()) + 1000
    data[at] ^= 0x40
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"array 'params/dense/kernel' cannot be read .*CRC"):
        dj.load_model(saved)


def test_files_that_are_not_dagjax_files(tmp_path):
    (tmp_path / "text.dj").write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable zip"):
        dj.load_model(tmp_path / "text.dj")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("data.txt", "x")
    with pytest.raises(CheckpointError, match="not a dagjax file: no manifest.json"):
        dj.load_model(tmp_path / "other.zip")
    with pytest.raises(FileNotFoundError, match="No dagjax file"):
        dj.load_model(tmp_path / "missing.dj")


def test_pickled_arrays_are_refused_never_unpickled(tmp_path):
    path = tmp_path / "evil.dj"
    write_archive(path, {"kind": "weights"}, [(("params", "w"), np.zeros(2))])
    with zipfile.ZipFile(path, "a") as zf, zf.open("arrays/1.npy", "w") as f:
        np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["arrays"].append({"path": ["params", "v"], "shape": [1], "dtype": "float32",
                               "member": "arrays/1.npy"})
    data = {name: zipfile.ZipFile(path).read(name) for name in ["arrays/0.npy", "arrays/1.npy"]}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for name, blob in data.items():
            zf.writestr(name, blob)
    with pytest.raises(CheckpointError, match="array 'params/v' is not a plain numeric .npy array"):
        read_archive(path)


def test_unusual_dtypes_round_trip_bit_exactly(tmp_path):
    arrays = {
        ("a", "bf16"): jnp.asarray([1.5, -2.25, 3e38], jnp.bfloat16),
        ("a", "f16"): np.asarray([0.1, 65504], np.float16),
        ("b", "i8"): np.arange(-3, 3, dtype=np.int8).reshape(2, 3),
        ("b", "bool"): np.asarray([True, False]),
        ("c", "scalar"): np.float64(2.5),
    }
    write_archive(tmp_path / "t.dj", {"kind": "test"}, arrays.items())
    manifest, back = read_archive(tmp_path / "t.dj")
    assert manifest["kind"] == "test" and list(back) == list(arrays)
    for key, value in arrays.items():
        value = np.asarray(value)
        assert back[key].dtype == value.dtype and back[key].shape == value.shape
        assert back[key].tobytes() == value.tobytes()


# ------------------------------------------------------------------ custom classes and code
class Scale(Layer):
    """Multiplies by a learned per-feature scale."""

    def __init__(self, init_value: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.init_value = init_value

    def declare_weights(self, spec):
        from dagjax.layers import WeightSpec

        return [WeightSpec("scale", (spec.shape[-1],), lambda k, s, d: jnp.full(s, self.init_value, d))]

    def call(self, params, x):
        return x * params["scale"]

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


def scale_model():
    x = dj.Input((3,))
    model = dj.Model(x, Scale(2.0)(layers.Dense(3)(x)))
    randomize(model)
    return model


def test_unknown_layer_class_is_a_clear_error_then_loads_by_custom_objects_or_registry(tmp_path, registry):
    model = scale_model()
    model.save(tmp_path / "s.dj")
    with pytest.raises(ValueError, match=r"Unknown layer class 'Scale' \(layer 'scale'\).*register_layer.*"
                                         r"custom_objects=\{'Scale': Scale\}"):
        dj.load_model(tmp_path / "s.dj")
    x = np.ones((2, 3), "float32")
    assert_same_outputs(model, dj.load_model(tmp_path / "s.dj", custom_objects={"Scale": Scale}), x)
    with dj.io.custom_object_scope({"Scale": Scale}):
        assert_same_outputs(model, dj.load_model(tmp_path / "s.dj"), x)
    with pytest.raises(ValueError, match="Unknown layer class 'Scale'"):
        dj.load_model(tmp_path / "s.dj")  # the scope ended
    dj.register_layer(Scale)
    assert_same_outputs(model, dj.load_model(tmp_path / "s.dj"), x)


def test_the_custom_layer_example_saves_and_loads(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
    try:
        from custom_layer import RBF
    finally:
        sys.path.pop(0)
    x = dj.Input((2,))
    model = dj.Model(x, layers.Dense(1)(RBF(4, gamma=0.5, name="rbf_features", trainable=False)(x)))
    randomize(model)
    model.save(tmp_path / "rbf.dj")
    loaded = dj.load_model(tmp_path / "rbf.dj", custom_objects={"RBF": RBF})
    assert_same_outputs(model, loaded, np.ones((3, 2), "float32"))
    rbf = loaded.get_layer("rbf_features")
    assert (rbf.units, rbf.gamma, rbf.trainable) == (4, 0.5, False)


class OnlyUnits(Layer):
    """A layer whose __init__ takes neither name nor **kwargs: the base arguments are set after it is made."""

    def __init__(self, units):
        super().__init__()
        self.units = units

    def call(self, params, x):
        return x[..., : self.units]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_a_layer_without_kwargs_round_trips_its_name_and_trainable_flag():
    layer = OnlyUnits(2)
    layer.name, layer.trainable = "first_two", False
    again = OnlyUnits.from_config(layer.get_config())
    assert (again.name, again.trainable, again.units) == ("first_two", False, 2)
    with pytest.raises(ValueError, match="contains '/'"):
        OnlyUnits.from_config({**layer.get_config(), "name": "../escape"})


class SaysTooMuch(OnlyUnits):
    def get_config(self):
        return {**super().get_config(), "colour": "red"}


def test_a_config_its_class_cannot_take_names_the_real_cause_not_custom_objects(tmp_path):
    x = dj.Input((3,))
    model = dj.Model(x, SaysTooMuch(2)(x))
    model.save(tmp_path / "m.dj")
    cause = r"unexpected keyword argument 'colour'.*SaysTooMuch.get_config\(\) returns an argument its"
    with pytest.raises(CheckpointError, match=cause) as err:
        dj.load_model(tmp_path / "m.dj", custom_objects={"SaysTooMuch": SaysTooMuch})
    assert "custom_objects" not in str(err.value)


def test_an_error_inside_a_wrapper_or_nested_model_names_the_innermost_layer_once(tmp_path):
    x = dj.Input((2, 3))
    inner_in = dj.Input((3,))
    inner = dj.Model(inner_in, Scale(2.0, name="scale")(inner_in), name="inner")
    dj.Model(x, layers.TimeDistributed(inner, name="td")(x)).save(tmp_path / "t.dj")
    with pytest.raises(ValueError, match=r"^Unknown layer class 'Scale' \(layer 'scale'\)"):
        dj.load_model(tmp_path / "t.dj")
    nameless = layers.Dense(2, bias_regularizer=functools.partial(double, k=3), name="p")
    with pytest.raises(TypeError, match=r"^Layer 'p' \(Dense\) cannot be saved: its regularizer"):
        dj.Model(x, layers.TimeDistributed(nameless)(x)).save(tmp_path / "p.dj")


def test_registered_name_is_what_the_file_records(tmp_path, registry):
    @dj.register_layer(name="mypkg>Scale")
    class Scale2(Scale):
        pass

    x = dj.Input((3,))
    model = dj.Model(x, Scale2()(x))
    model.save(tmp_path / "s.dj")
    assert read_archive(tmp_path / "s.dj")[0]["config"]["config"]["layers"][1]["class_name"] == "mypkg>Scale"
    assert type(dj.load_model(tmp_path / "s.dj").layers[1]) is Scale2
    with pytest.raises(ValueError, match="name of the built-in"):
        dj.register_layer(name="Dense")(Scale)
    with pytest.raises(TypeError, match="Layer subclass"):
        dj.register_layer(int)


def test_a_lambda_needs_its_function_passed_in(tmp_path):
    x = dj.Input((3,))
    model = dj.Model(x, layers.Lambda(double, name="twice")(x))
    model.save(tmp_path / "l.dj")
    with pytest.raises(ValueError, match=r"Layer 'twice' is a Lambda around function 'double'.*never "
                                         r"store code.*custom_objects=\{'double': double\}"):
        dj.load_model(tmp_path / "l.dj")
    anonymous = dj.Model(x, layers.Lambda(lambda t: t + 1)(x))
    anonymous.save(tmp_path / "a.dj")
    with pytest.raises(ValueError, match="anonymous lambda"):
        dj.load_model(tmp_path / "a.dj")


def test_function_regularizer_is_saved_by_name_and_loads_through_custom_objects(tmp_path):
    """As a Lambda's function or a custom activation: the file holds the name, never the code."""

    def half_l2(w):
        return 0.5 * jnp.sum(w**2)

    x = dj.Input((3,))
    dense = layers.Dense(2, kernel_regularizer=half_l2, activity_regularizer=half_l2, name="d")
    model = dj.Model(x, dense(x))
    randomize(model)
    config = model.get_config()["layers"][1]["config"]
    assert config["kernel_regularizer"] == config["activity_regularizer"] == "half_l2"
    model.save(tmp_path / "r.dj")
    with pytest.raises(ValueError, match=r"Cannot rebuild layer 'd' \(Dense\).*Unknown regularizer "
                                         r"'half_l2'.*custom_objects"):
        dj.load_model(tmp_path / "r.dj")
    loaded = dj.load_model(tmp_path / "r.dj", custom_objects={"half_l2": half_l2})
    assert loaded.layers[1].kernel_regularizer is half_l2 and loaded.layers[1].activity_regularizer is half_l2
    np.testing.assert_allclose(loaded.weight_penalty(loaded.params), model.weight_penalty(model.params))

    anonymous = dj.Model(x, layers.Dense(2, kernel_regularizer=lambda w: jnp.sum(w))(x))
    anonymous.save(tmp_path / "a.dj")
    with pytest.raises(ValueError, match="anonymous lambda"):
        dj.load_model(tmp_path / "a.dj")

    nameless = dj.Model(x, layers.Dense(2, bias_regularizer=functools.partial(double, k=3), name="p")(x))
    with pytest.raises(TypeError, match=r"Layer 'p' \(Dense\) cannot be saved: its regularizer "
                                        r"functools.partial.*never code"):
        nameless.save(tmp_path / "p.dj")


def test_nameless_initializer_or_activation_is_refused_at_save_naming_the_layer(tmp_path):
    """A function with no name has nothing a file could record: the save says so instead of writing a repr."""
    x = dj.Input((3,))
    for kwargs, what in ((dict(activation=functools.partial(double, k=3)), "activation"),
                         (dict(kernel_initializer=functools.partial(jax.random.normal)), "initializer")):
        model = dj.Model(x, layers.Dense(2, name="p", **kwargs)(x))
        refused = rf"Layer 'p' \(Dense\) cannot be saved: its {what} functools.partial"
        with pytest.raises(TypeError, match=refused):
            model.save(tmp_path / "p.dj")
        assert not (tmp_path / "p.dj").exists()


def test_custom_activation_loads_through_custom_objects(tmp_path):
    def swish2(v):
        return v * jax.nn.sigmoid(2 * v)

    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(2, activation=swish2, name="d")(x))
    randomize(model)
    model.save(tmp_path / "c.dj")
    with pytest.raises(ValueError, match=r"Cannot rebuild layer 'd' \(Dense\).*Unknown activation 'swish2'"):
        dj.load_model(tmp_path / "c.dj")
    loaded = dj.load_model(tmp_path / "c.dj", custom_objects={"swish2": swish2})
    assert_same_outputs(model, loaded, np.ones((2, 3), "float32"))


def test_config_that_is_not_json_is_refused_at_save(tmp_path):
    class Holder(Layer):
        def call(self, params, x):
            return x

        def get_config(self):
            return {**super().get_config(), "thing": object()}

    x = dj.Input((3,))
    with pytest.raises(TypeError, match=r"Layer 'holder' \(Holder\) cannot be saved.*thing="):
        dj.Model(x, Holder()(x)).save(tmp_path / "h.dj")
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------ atomic writes
def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(saved, monkeypatch):
    good = saved.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def failing(fp, array, **kwargs):
        calls.append(array.shape)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_write(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    model = dj.load_model(saved)
    with pytest.raises(OSError, match="disk full"):
        model.save(saved)
    assert saved.read_bytes() == good
    assert os.listdir(saved.parent) == [saved.name]
    with pytest.raises(FileExistsError):
        model.save(saved, overwrite=False)


CHILD = textwrap.dedent("""
    import sys, time
    import numpy as np
    import jax, jax.numpy as jnp
    import dagjax as dj

    path, pause_at = sys.argv[1], int(sys.argv[2])
    x = dj.Input((1024,))
    model = dj.Model(x, dj.layers.Dense(256)(dj.layers.Dense(1024)(x)))  # ~5 MB of float32
    real_write = np.lib.format.write_array
    progress = {"version": 0, "arrays": 0}

    def write_array(fp, array, **kwargs):
        real_write(fp, array, **kwargs)
        progress["arrays"] += 1
        if progress["version"] == pause_at and progress["arrays"] == 2:
            print("mid", pause_at, flush=True)
            time.sleep(60)

    np.lib.format.write_array = write_array
    for version in range(1, 1000):
        progress.update(version=version, arrays=0)
        model.params = jax.tree.map(lambda a: jnp.full_like(a, version), model.params)
        model.save(path)
        print("saved", version, flush=True)
""")


def run_until_killed(path, pause_at, wait_for):
    """Start the saving loop, SIGKILL it once it prints ``wait_for`` (plus a random delay); last 'saved'."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(pause_at)], stdout=subprocess.PIPE,
                             text=True, env=env)
    last = 0
    try:
        for line in child.stdout:
            if line.startswith("saved"):
                last = int(line.split()[1])
            if line.strip() == wait_for:
                time.sleep(random.uniform(0.0, 0.15) if pause_at == 0 else 0.05)
                break
        child.send_signal(signal.SIGKILL)
        for line in child.stdout:  # lines written before the kill
            if line.startswith("saved"):
                last = int(line.split()[1])
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return last


def loaded_version(path):
    values = np.concatenate([np.ravel(w) for w in dj.load_model(path).get_weights()])
    assert values.min() == values.max(), "a checkpoint mixes two versions"
    return int(values[0])


def test_sigkill_in_the_middle_of_a_save_leaves_the_last_checkpoint(tmp_path):
    path = tmp_path / "ckpt.dj"
    last = run_until_killed(path, pause_at=3, wait_for="mid 3")
    assert last == 2
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")], "the kill did not land mid-save"
    assert loaded_version(path) == 2


def test_sigkill_at_a_random_moment_leaves_a_complete_checkpoint(tmp_path):
    path = tmp_path / "ckpt.dj"
    last = run_until_killed(path, pause_at=0, wait_for="saved 2")
    assert loaded_version(path) in (last, last + 1)


def test_model_get_config_and_from_config_rebuild_it_as_keras_does(tmp_path):
    inner_in = dj.Input((4,), name="inner_in")
    inner = dj.Model(inner_in, layers.Dense(3, name="inner_dense")(inner_in), name="inner")
    x = dj.Input((2, 4), name="x")
    model = dj.Model(x, layers.TimeDistributed(inner, name="td")(x), name="outer")
    config = model.get_config()
    assert set(config) == {"name", "trainable", "layers", "input_layers", "output_layers"}  # Keras's keys
    rebuilt = dj.Model.from_config(config)
    assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
    rebuilt.set_weights(model.get_weights())
    data = np.random.default_rng(0).normal(size=(3, 2, 4)).astype("float32")
    np.testing.assert_array_equal(rebuilt.predict(data, verbose=0), model.predict(data, verbose=0))
    model.save(tmp_path / "td.dj")  # a wrapper around a model saves and loads like any layer
    loaded = dj.load_model(tmp_path / "td.dj")
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))
