"""``model.export`` and ``dagjax.export.load``: the inference function as StableHLO, run without the model."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.io import CheckpointError
from dagjax.layers import Layer, WeightSpec


def random_weights(model, seed):
    """``(params, state)``: non-trivial (positive, so variances stay valid), made on the host."""
    rng = np.random.default_rng(seed)
    fill = lambda s: jnp.asarray(rng.uniform(0.5, 1.5, s.shape), s.dtype)
    return tuple(jax.tree.map(fill, model.abstract_weights(trainable=t)) for t in (True, False))


def randomize(model, seed=0):
    model.params, model.state = random_weights(model, seed)


def assert_close(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)


def dense_model():
    x = dj.Input((4,), name="x")
    return dj.Model(x, layers.Dense(3, activation="tanh", name="out")(layers.Dense(5)(x)))


def dict_model():
    """Two inputs, two outputs by name, with BatchNormalization and Dropout between."""
    x, m = dj.Input((4,), name="x"), dj.Input((3,), name="m")
    h = layers.Dense(6, activation="relu")(layers.concatenate([x, m]))
    h = layers.Dropout(0.5)(layers.BatchNormalization()(h))
    model = dj.Model({"x": x, "m": m}, {"b": layers.Dense(1, name="b")(h), "a": layers.Dense(2, name="a")(h)})
    randomize(model)
    return model


def dict_inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 4)).astype("float32"), "m": rng.normal(size=(n, 3)).astype("float32")}


@pytest.fixture(scope="module")
def dict_export(tmp_path_factory):
    """One export of ``dict_model`` shared by the checks that only read it."""
    dj.clear_session()
    model = dict_model()
    path = tmp_path_factory.mktemp("export") / "dict.djx"
    model.export(path)
    return model, path


# ------------------------------------------------------------------ round trips
def test_single_output_equals_predict_at_two_batch_sizes(tmp_path):
    model = dense_model()
    randomize(model)
    model.export(tmp_path / "m.djx")
    loaded = dj.export.load(tmp_path / "m.djx")
    assert loaded.inputs == [dj.export.Spec("x", ("batch", 4), np.dtype("float32"))]
    assert loaded.outputs == [dj.export.Spec("out", ("batch", 3), np.dtype("float32"))]
    for n in (1, 7):
        x = np.random.default_rng(n).normal(size=(n, 4)).astype("float32")
        out = loaded(x)
        assert out.shape == (n, 3)
        assert_close(out, model.predict(x, verbose=0))
        assert_close(loaded([x]), model.apply(model.params, model.state, x)[0])


def test_the_file_is_one_zip_of_stored_members(tmp_path):
    model = dense_model()
    model.export(tmp_path / "m.djx")
    with zipfile.ZipFile(tmp_path / "m.djx") as zf:
        infos = {i.filename: i for i in zf.infolist()}
        signature = json.loads(zf.read("signature.json"))
    assert set(infos) == {"signature.json", "program.bin"}
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos.values())
    assert (signature["format"], signature["version"]) == ("dagjax-export", 1)
    assert (signature["weights"], signature["outputs"]["structure"]) == ("constants", "single")


def test_multi_input_dict_model_with_batchnorm_and_dropout_runs_as_inference(dict_export):
    model, path = dict_export
    loaded = dj.export.load(path)
    assert loaded.input_names == ["m", "x"] and loaded.output_names == ["a", "b"]
    for n in (2, 5):
        x = dict_inputs(n)
        out = loaded(x)
        assert list(out) == ["a", "b"]
        assert_close(out, model.predict(x, verbose=0))
        assert_close(loaded([x["m"], x["x"]]), out)  # a list, in the model's input order
    # Inference: BatchNormalization's moving statistics, Dropout off. Training mode would differ.
    trained, _ = model.apply(model.params, model.state, x, training=True, rng=jax.random.key(1))
    assert not np.allclose(np.asarray(out["a"]), np.asarray(trained["a"]))


def test_list_outputs_come_back_as_a_list(tmp_path):
    x = dj.Input((2,))
    model = dj.Model(x, [layers.Dense(1)(x), layers.Dense(3)(x)])
    model.export(tmp_path / "l.djx")
    data = np.ones((3, 2), "float32")
    out = dj.export.load(tmp_path / "l.djx")(data)
    assert isinstance(out, list) and [o.shape for o in out] == [(3, 1), (3, 3)]
    assert_close(out, model.predict(data, verbose=0))


def test_a_loaded_export_runs_under_jit(dict_export):
    model, path = dict_export
    loaded = dj.export.load(path)
    assert_close(jax.jit(loaded)(dict_inputs(3)), model.predict(dict_inputs(3), verbose=0))


# ------------------------------------------------------------------ no model code needed
class Scale(Layer):
    """Multiplies by a learned per-feature scale: a class only this test module defines."""

    def declare_weights(self, spec):
        return [WeightSpec("scale", (spec.shape[-1],), lambda k, s, d: jnp.full(s, 2.0, d))]

    def call(self, params, x):
        return x * params["scale"]


_LOAD_ELSEWHERE = textwrap.dedent("""
    import sys
    import numpy as np
    import dagjax.export
    loaded = dagjax.export.load(sys.argv[1])
    np.save(sys.argv[2], np.asarray(loaded(np.load(sys.argv[3]))))
    assert "Scale" not in dagjax.layers._registry._REGISTERED
    assert not [m for m in sys.modules if m.endswith("test_export")]
""")


def test_a_fresh_process_loads_it_without_the_custom_layer_class(tmp_path, monkeypatch):
    monkeypatch.setitem(dj.layers._registry._REGISTERED, "Scale", Scale)
    x = dj.Input((3,))
    model = dj.Model(x, layers.Dense(2)(Scale()(x)))
    randomize(model)
    model.export(tmp_path / "s.djx")
    data = np.arange(12, dtype="float32").reshape(4, 3)
    np.save(tmp_path / "x.npy", data)
    paths = [str(tmp_path / name) for name in ("s.djx", "out.npy", "x.npy")]
    run = subprocess.run(
        [sys.executable, "-c", _LOAD_ELSEWHERE, *paths], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert run.returncode == 0, run.stderr
    assert_close(np.load(tmp_path / "out.npy"), model.predict(data, verbose=0))


# ------------------------------------------------------------------ weights as arguments
def test_params_as_argument_runs_with_new_params(tmp_path):
    model = dict_model()
    model.export(tmp_path / "p.djx", params_as_argument=True)
    loaded = dj.export.load(tmp_path / "p.djx")
    assert loaded.params_as_argument
    x = dict_inputs(4)
    assert_close(loaded(x, params=model.params, state=model.state), model.predict(x, verbose=0))
    params, state = random_weights(model, seed=7)
    new = loaded(x, params=params, state=state)
    assert_close(new, model.apply(params, state, x)[0])
    assert not np.allclose(np.asarray(new["a"]), model.predict(x, verbose=0)["a"])

    with pytest.raises(ValueError, match="takes its weights at each call.*BatchNormalization"):
        loaded(x)
    params["a"]["kernel"] = jnp.zeros((7, 2))
    with pytest.raises(ValueError, match=r"Weight 'params/a/kernel'.*expects shape \(6, 2\), got \(7, 2\)"):
        loaded(x, params=params, state=state)
    del params["a"]
    with pytest.raises(ValueError, match=r"params given.*lacks \['a/bias'"):
        loaded(x, params=params, state=state)


def test_baked_weights_take_no_params(dict_export):
    model, path = dict_export
    with pytest.raises(ValueError, match="holds its weights as constants.*params_as_argument=True"):
        dj.export.load(path)(dict_inputs(2), params=model.params)


# ------------------------------------------------------------------ inputs checked, in the user's words
def test_wrong_inputs_are_named(dict_export):
    _, path = dict_export
    loaded = dj.export.load(path)
    x = dict_inputs(2)
    with pytest.raises(ValueError, match=r"'functional.*' has no input 'y'; its inputs are \['m', 'x'\]"):
        loaded({**x, "y": x["x"]})
    with pytest.raises(ValueError, match="needs input 'x'"):
        loaded({"m": x["m"]})
    with pytest.raises(ValueError, match=r"takes 2 input\(s\), \['m', 'x'\], got a list of 1"):
        loaded([x["m"]])
    with pytest.raises(ValueError, match="takes 2 inputs.*not one array"):
        loaded(x["x"])
    with pytest.raises(ValueError, match=r"Input 'x' .* expects shape \(batch, 4\), got \(2, 5\)"):
        loaded({**x, "x": np.ones((2, 5), "float32")})
    with pytest.raises(ValueError, match=r"Input 'x' .* has 3 along batch, input 'm' 2"):
        loaded({**x, "x": np.ones((3, 4), "float32")})
    with pytest.raises(ValueError, match="no empty arrays"):
        loaded({"m": np.ones((0, 3), "float32"), "x": np.ones((0, 4), "float32")})


def test_dtypes_convert_only_within_their_kind(tmp_path):
    ids = dj.Input((3,), dtype="int32", name="ids")
    model = dj.Model(ids, layers.Embedding(10, 2)(ids))
    model.export(tmp_path / "e.djx")
    loaded = dj.export.load(tmp_path / "e.djx")
    data = np.array([[1, 2, 3]], "int64")
    assert_close(loaded(data), model.predict(data.astype("int32"), verbose=0))  # int64 ids: converted
    with pytest.raises(TypeError, match=r"'ids' .* expects dtype int32, got float32.*astype\('int32'\)"):
        loaded(data.astype("float32"))
    with pytest.raises(TypeError, match="must be an array of numbers"):
        loaded(np.array([["a", "b", "c"]]))


# ------------------------------------------------------------------ open dimensions beyond the batch
def test_open_sequence_length_needs_its_constraint_then_takes_any_length(tmp_path):
    text = dj.Input((None,), dtype="int32", name="text")
    h = layers.GlobalMaxPooling1D()(layers.Conv1D(4, 5)(layers.Embedding(20, 3)(text)))
    model = dj.Model(text, layers.Dense(1)(h))
    with pytest.raises(ValueError, match=r"open \(None\) dimensions \(batch, text_axis1\).*constraints="):
        model.export(tmp_path / "t.djx")
    assert not (tmp_path / "t.djx").exists()
    model.export(tmp_path / "t.djx", constraints=("text_axis1 >= 5",))
    loaded = dj.export.load(tmp_path / "t.djx")
    assert loaded.inputs[0].shape == ("batch", "text_axis1") and loaded.constraints == ("text_axis1 >= 5",)
    for shape in ((2, 6), (3, 11)):
        data = np.random.default_rng(0).integers(0, 20, shape).astype("int32")
        assert_close(loaded(data), model.predict(data, verbose=0))
    with pytest.raises(ValueError, match=r"exported assuming \['text_axis1 >= 5'\]"):
        loaded(np.ones((2, 3), "int32"))


# ------------------------------------------------------------------ formats and platforms
def test_other_formats_and_unknown_platforms_are_refused(tmp_path):
    model = dense_model()
    with pytest.raises(ValueError, match="cannot export format='tf_saved_model'.*Keras's export"):
        model.export(tmp_path / "m", format="tf_saved_model")
    with pytest.raises(ValueError, match="for NVIDIA GPUs say 'cuda'"):
        model.export(tmp_path / "m.djx", platforms=("cpu", "gpu"))
    with pytest.raises(ValueError, match="no input shape yet"):
        dj.Sequential([layers.Dense(2)]).export(tmp_path / "s.djx")
    assert not os.listdir(tmp_path)


def test_several_platforms_lower_on_the_cpu_and_others_refuse_to_run_here(tmp_path):
    model = dense_model()
    x = np.ones((2, 4), "float32")
    model.export(tmp_path / "multi.djx", platforms=("cpu", "cuda", "tpu"))
    loaded = dj.export.load(tmp_path / "multi.djx")
    assert loaded.platforms == ("cpu", "cuda", "tpu")
    assert_close(loaded(x), model.predict(x, verbose=0))
    model.export(tmp_path / "cuda.djx", platforms="cuda")
    with pytest.raises(ValueError, match=r"lowered for \('cuda',\) only.*on 'cpu'"):
        dj.export.load(tmp_path / "cuda.djx")(x)


def test_conv_and_recurrent_layers_lower_for_cuda_on_the_cpu(tmp_path):
    image, seq = dj.Input((6, 6, 2), name="image"), dj.Input((4, 3), name="seq")
    y = layers.MaxPooling2D()(layers.BatchNormalization()(layers.Conv2D(3, 3, padding="same")(image)))
    r = layers.GRU(2)(layers.LSTM(3, return_sequences=True)(seq))
    model = dj.Model([image, seq], layers.Dense(2)(layers.concatenate([layers.Flatten()(y), r])))
    randomize(model)
    model.export(tmp_path / "m.djx", platforms=("cpu", "cuda"))
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(3, 6, 6, 2)).astype("float32"), rng.normal(size=(3, 4, 3)).astype("float32")]
    assert_close(dj.export.load(tmp_path / "m.djx")(data), model.predict(data, verbose=0))


# ------------------------------------------------------------------ damaged and foreign files
def rewrite(path, members):
    """The zip at ``path`` again, stored, with the members ``{name: bytes}`` replaced (CRCs valid)."""
    with zipfile.ZipFile(path) as zf:
        contents = {i.filename: zf.read(i) for i in zf.infolist()}
    contents.update(members)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)


def edited_signature(path, **changes):
    with zipfile.ZipFile(path) as zf:
        signature = json.loads(zf.read("signature.json"))
    signature.update(changes)
    rewrite(path, {"signature.json": json.dumps(signature).encode()})


@pytest.fixture
def exported(tmp_path, dict_export):
    """A fresh copy of the shared export, to damage."""
    path = tmp_path / "copy.djx"
    path.write_bytes(dict_export[1].read_bytes())
    return path


def test_truncated_and_corrupted_files_are_checkpoint_errors(exported):
    data = exported.read_bytes()
    exported.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable zip"):
        dj.export.load(exported)
    flipped = bytearray(data)
    start = data.index(b"program.bin") + len("program.bin") + 200  # inside the program's bytes
    flipped[start] ^= 0xFF
    exported.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"program.bin' cannot be read .*CRC"):
        dj.export.load(exported)


def test_other_versions_are_refused_with_what_to_do(exported):
    edited_signature(exported, version=2)
    with pytest.raises(CheckpointError, match="format version 2; this dagjax reads version 1. Upgrade"):
        dj.export.load(exported)
    edited_signature(exported, version="1")
    with pytest.raises(CheckpointError, match="version '1'.*export the model again"):
        dj.export.load(exported)


def test_hostile_contents_are_checkpoint_errors(exported, tmp_path, monkeypatch):
    program = zipfile.ZipFile(exported).read("program.bin")
    rewrite(exported, {"program.bin": b"\xff" * 64})
    with pytest.raises(CheckpointError, match="its program cannot be read"):
        dj.export.load(exported)
    rewrite(exported, {"program.bin": program})
    signature = json.loads(zipfile.ZipFile(exported).read("signature.json"))
    signature["inputs"][0]["shape"] = ["batch", 9]
    rewrite(exported, {"signature.json": json.dumps(signature).encode()})
    with pytest.raises(CheckpointError, match="program's inputs are not the ones its signature lists"):
        dj.export.load(exported)
    signature["inputs"][0]["shape"] = "(1, 2)"
    rewrite(exported, {"signature.json": json.dumps(signature).encode()})
    with pytest.raises(CheckpointError, match="inputs entry 0 \\('m'\\) has no valid shape"):
        dj.export.load(exported)
    rewrite(exported, {"signature.json": b"[" * 100_000})
    with pytest.raises(CheckpointError, match="signature.json is not JSON"):
        dj.export.load(exported)
    monkeypatch.setattr("dagjax.export._file.SIGNATURE_LIMIT", 100)
    with pytest.raises(CheckpointError, match="'signature.json' declares 100000 bytes, more than the 100"):
        dj.export.load(exported)
    with pytest.raises(CheckpointError, match="not a regular file"):
        dj.export.load(tmp_path)


def test_a_model_file_is_not_an_export(tmp_path):
    model = dense_model()
    model.save(tmp_path / "m.dj")
    with pytest.raises(CheckpointError, match="not a dagjax export: it has no signature.json"):
        dj.export.load(tmp_path / "m.dj")
    rewrite(tmp_path / "m.dj", {"signature.json": b'{"format": "dagjax"}'})
    with pytest.raises(CheckpointError, match="does not say format 'dagjax-export'.*dj.load_model"):
        dj.export.load(tmp_path / "m.dj")


def test_a_failed_export_leaves_the_previous_file(tmp_path, monkeypatch):
    model = dense_model()
    model.export(tmp_path / "m.djx")
    before = (tmp_path / "m.djx").read_bytes()

    class Unwritable:  # the program's bytes fail while the file is half written
        def __bytes__(self):
            raise OSError("disk full")

    monkeypatch.setattr("dagjax.export._exporting.serialize", lambda exported: Unwritable())
    with pytest.raises(OSError, match="disk full"):
        model.export(tmp_path / "m.djx")
    assert (tmp_path / "m.djx").read_bytes() == before
    assert os.listdir(tmp_path) == ["m.djx"]
