"""Layer and model names are single keys: no path separators, and nothing a writer builds from one
lands outside its directory (a hostile model file must not make TensorBoard write elsewhere)."""

import os

import numpy as np
import pytest

import dagjax as dj
from dagjax import callbacks, layers
from dagjax.io import read_archive, write_archive


@pytest.mark.parametrize("name", ["a/b", "../../x", "a\\b", "..\\..\\x"])
def test_a_name_with_a_path_separator_is_refused_as_keras_does(name):
    with pytest.raises(ValueError, match="contains '/' or"):
        layers.Dense(2, name=name)
    x = dj.Input((3,))
    with pytest.raises(ValueError, match="contains '/' or"):
        dj.Model(x, layers.Dense(2)(x), name=name)
    with pytest.raises(ValueError, match="contains '/' or"):
        dj.Sequential([layers.Dense(2)], name=name)


def embedding_model(embedding_name="emb"):
    tokens = dj.Input((4,), dtype="int32", name="tokens")
    h = layers.GlobalAveragePooling1D()(layers.Embedding(10, 3, name=embedding_name)(tokens))
    return dj.Model(tokens, layers.Dense(1, name="out")(h))


def test_a_model_file_naming_a_layer_with_a_path_does_not_load(tmp_path):
    path = tmp_path / "model.dj"
    embedding_model().save(path)
    manifest, arrays = read_archive(path)
    config = manifest["config"]
    for layer in config["config"]["layers"]:
        if layer["config"]["name"] == "emb":
            layer["config"]["name"] = "../../../escape/x"
    metadata = {k: v for k, v in manifest.items() if k not in ("format", "version", "arrays")}
    write_archive(path, metadata, arrays.items())
    with pytest.raises(ValueError, match="contains '/' or"):
        dj.load_model(path)


def test_tensorboard_never_writes_outside_its_log_dir(tmp_path):
    """A nested model named '..' around an Embedding named '..': its snapshot would land above log_dir."""
    tokens = dj.Input((4,), dtype="int32")
    inner = dj.Model(tokens, layers.Embedding(10, 3, name="..")(tokens), name="..")
    outer_in = dj.Input((4,), dtype="int32")
    model = dj.Model(outer_in, layers.Dense(1)(layers.GlobalAveragePooling1D()(inner(outer_in))))
    model.compile("sgd", "mse")
    log_dir = tmp_path / "deep" / "logs"
    x, y = np.zeros((8, 4), "int32"), np.zeros((8, 1), "float32")
    with pytest.raises(ValueError, match="outside its log_dir"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.TensorBoard(log_dir, embeddings_freq=1)])
    written = [os.path.join(root, f) for root, _, files in os.walk(tmp_path) for f in files]
    assert written and all(f.startswith(str(log_dir) + os.sep) for f in written)  # event files only
    assert not any(f.endswith("epoch_0.tsv") for f in written)
    np.testing.assert_array_equal(model.predict(x, verbose=0).shape, (8, 1))  # the model is still usable
