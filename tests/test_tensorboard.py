"""callbacks.TensorBoard: event files read back, a real TensorBoard server, a Chromium screenshot.

One small fit (an Embedding, a nested model, a shared layer) writes every kind
of record; the tests read it back with TensorBoard's own EventAccumulator and
compare it with History, the model's weights and independent JAX maths. The
example's logs are served by a real ``tensorboard`` process on 127.0.0.1.
"""

import importlib.util
import pathlib
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from google.protobuf import text_format
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

import dagjax as dj
from dagjax import callbacks, layers
from dagjax.callbacks import CallbackList

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
EPOCHS, BATCH = 3, 8


def build_model() -> dj.Model:
    """Embedding -> pool -> (nested encoder | side) -> shared Dense on both -> concat -> out."""
    enc_in = dj.Input((3,), name="enc_in")
    encoder = dj.Model(enc_in, layers.Dense(4, activation="relu", name="enc_dense")(enc_in), name="encoder")
    words = dj.Input((6,), dtype="int32", name="words")
    pooled = layers.GlobalAveragePooling1D(name="pool")(layers.Embedding(12, 3, name="embed")(words))
    shared = layers.Dense(2, activation="tanh", name="shared")
    joined = layers.Concatenate(name="concat")(
        [shared(encoder(pooled)), shared(layers.Dense(4, name="side")(pooled))]
    )
    return dj.Model(words, layers.Dense(1, activation="sigmoid", name="out")(joined), name="tb_model")


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 12, (n, 6)).astype("int32")
    return x, (x[:, 0] > 5).astype("float32")[:, None]


class BatchRecorder(callbacks.Callback):
    """The logs of every training batch, as floats."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append(dict(logs))


def read_run(path) -> ea.EventAccumulator:
    guidance = {ea.SCALARS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0, ea.GRAPH: 1}
    acc = ea.EventAccumulator(str(path), size_guidance=guidance)
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One fit logging everything: scalars every 2 batches, histograms every 2 epochs, embeddings each."""
    log_dir = tmp_path_factory.mktemp("tb")
    metadata = tmp_path_factory.mktemp("meta") / "words.tsv"
    metadata.write_text("".join(f"word{i}\n" for i in range(12)))
    model = build_model()
    model.compile("rmsprop", "binary_crossentropy", metrics=["accuracy"], steps_per_execution=1)
    tb = callbacks.TensorBoard(
        log_dir,
        histogram_freq=2,
        write_images=True,
        write_steps_per_second=True,
        update_freq=2,
        embeddings_freq=1,
        embeddings_metadata={"embed": str(metadata)},
    )
    recorder = BatchRecorder()
    x, y = data()
    history = model.fit(
        x, y, batch_size=BATCH, epochs=EPOCHS, validation_split=0.25, callbacks=[tb, recorder], verbose=0
    )
    return {
        "dir": log_dir,
        "model": model,
        "tb": tb,
        "history": history.history,
        "batches": recorder.batches,
        "x_val": x[30:],
        "y_val": y[30:],
        "train": read_run(log_dir / "train"),
        "validation": read_run(log_dir / "validation"),
    }


def values(acc, tag):
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_epoch_scalars_equal_history(run):
    history, train, val = run["history"], run["train"], run["validation"]
    for name in ("loss", "accuracy"):
        assert values(train, f"epoch_{name}") == [
            (i, pytest.approx(v, rel=1e-6)) for i, v in enumerate(history[name])
        ]
        got = values(val, f"epoch_{name}")
        assert got == [(i, pytest.approx(v, rel=1e-6)) for i, v in enumerate(history[f"val_{name}"])]
    assert values(train, "epoch_learning_rate") == [(i, pytest.approx(0.001)) for i in range(EPOCHS)]
    assert [s for s, v in values(train, "epoch_steps_per_second") if v > 0] == list(range(EPOCHS))


def test_batch_scalars_every_update_freq(run):
    steps = len(run["batches"])  # 4 batches per epoch (30 samples of 8), counted across epochs
    assert steps == 4 * EPOCHS
    for name in ("loss", "accuracy"):
        expected = [(k, pytest.approx(run["batches"][k - 1][name], rel=1e-6)) for k in range(2, steps + 1, 2)]
        assert values(run["train"], f"batch_{name}") == expected
    assert [s for s, _ in values(run["train"], "batch_steps_per_second")] == list(range(2, steps + 1, 2))


def test_evaluation_scalars_at_optimizer_steps(run):
    got = values(run["validation"], "evaluation_loss_vs_iterations")
    assert got == [
        (4 * (i + 1), pytest.approx(v, rel=1e-6)) for i, v in enumerate(run["history"]["val_loss"])
    ]


def weight_tags(model):
    return {"/".join(path) for _, path in model.weight_paths()}


def test_histograms_for_every_weight_activation_gradient_on_logged_epochs(run):
    model, train = run["model"], run["train"]
    weights = weight_tags(model)
    assert weights == {
        "embed/embeddings", "encoder/enc_dense/kernel", "encoder/enc_dense/bias",
        "side/kernel", "side/bias", "shared/kernel", "shared/bias", "out/kernel", "out/bias",
    }  # fmt: skip
    activations = {"embed", "pool", "encoder", "side", "shared", "concat", "out"}
    expected = (
        {f"{w}/histogram" for w in weights}
        | {f"{w}/gradient" for w in weights}
        | {f"{a}/activations" for a in activations}
        | {"shared/activations_1"}
    )
    assert set(train.Tags()["histograms"]) == expected
    for tag in expected:
        assert [e.step for e in train.Histograms(tag)] == [0, 2], tag
    assert [probe.calls for probe in run["tb"]._probes.values()] == [2]  # only on the logged epochs


def last_histogram(run, tag):
    return run["train"].Histograms(tag)[-1].histogram_value


def check_histogram(h, array):
    array = np.asarray(array, np.float64)
    assert h.num == array.size
    assert h.min == pytest.approx(array.min(), rel=1e-6, abs=1e-7)
    assert h.max == pytest.approx(array.max(), rel=1e-6, abs=1e-7)
    assert h.sum == pytest.approx(array.sum(), rel=1e-4, abs=1e-6)
    assert h.sum_squares == pytest.approx((array**2).sum(), rel=1e-4, abs=1e-9)
    assert sum(h.bucket) == array.size and len(h.bucket) in (1, 30)
    edges = np.linspace(array.min(), array.max(), 31)
    if len(h.bucket) == 30:
        counts, _ = np.histogram(array, bins=edges)
        assert np.abs(np.asarray(h.bucket) - counts).sum() <= 2  # values on an edge may fall either side


def test_histogram_values_match_weights_activations_and_gradients(run):
    model = run["model"]
    params, state = model.params, model.state
    check_histogram(last_histogram(run, "out/kernel/histogram"), params["out"]["kernel"])
    check_histogram(last_histogram(run, "embed/embeddings/histogram"), params["embed"]["embeddings"])
    x, y = run["x_val"][:BATCH], run["y_val"][:BATCH]
    out, _ = model.apply(params, state, x)
    check_histogram(last_histogram(run, "out/activations"), out)

    def loss(p):
        prob = jnp.clip(model.apply(p, state, x)[0], 1e-7, 1 - 1e-7)
        return -jnp.mean(y * jnp.log(prob) + (1 - y) * jnp.log(1 - prob))

    grads = jax.jit(jax.grad(loss))(params)
    check_histogram(last_histogram(run, "shared/kernel/gradient"), grads["shared"]["kernel"])
    check_histogram(
        last_histogram(run, "encoder/enc_dense/kernel/gradient"), grads["encoder"]["enc_dense"]["kernel"]
    )


def test_weight_images_on_histogram_epochs(run):
    images = run["train"].Images("side/kernel/image")
    assert [e.step for e in images] == [0, 2]
    png = images[-1].encoded_image_string
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", png[16:24]) == (4, 3)  # the (3, 4) kernel, wider than tall


def test_graph_has_one_node_per_layer_and_the_call_edges(run):
    graph = run["train"].Graph()
    nodes = {n.name: n for n in graph.node}
    assert set(nodes) == {
        "words", "embed", "pool", "encoder/enc_in", "encoder/enc_dense", "side", "shared", "concat", "out",
    }  # fmt: skip
    inputs = {name: list(n.input) for name, n in nodes.items()}
    assert inputs["encoder/enc_in"] == ["pool"]
    assert inputs["shared"] == ["encoder/enc_dense", "side"]  # one node, an edge per call
    assert inputs["concat"] == ["shared", "shared:1"]
    assert inputs["out"] == ["concat"]
    assert nodes["shared"].op == "Dense" and nodes["shared"].attr["calls"].i == 2
    shapes = [[d.size for d in s.dim] for s in nodes["shared"].attr["_output_shapes"].list.shape]
    assert shapes == [[-1, 2], [-1, 2]]


def test_projector_config_points_at_each_embedding_snapshot(run):
    log_dir = run["dir"]
    config = text_format.Parse((log_dir / "projector_config.pbtxt").read_text(), ProjectorConfig())
    assert [e.tensor_name for e in config.embeddings] == [
        f"embed/embeddings/epoch_{i}" for i in range(EPOCHS)
    ]
    final = config.embeddings[-1]
    assert list(final.tensor_shape) == [12, 3]
    np.testing.assert_allclose(
        np.loadtxt(log_dir / final.tensor_path, delimiter="\t"),
        run["model"].params["embed"]["embeddings"],
        rtol=1e-6,
    )
    assert (log_dir / final.metadata_path).read_text().splitlines()[3] == "word3"  # copied into log_dir


def test_fit_stays_fused_with_tensorboard(tmp_path):
    tb = callbacks.TensorBoard(tmp_path, histogram_freq=1, update_freq=5)
    assert not CallbackList([tb]).needs_every_batch("train")


def test_weight_histograms_only_without_validation_data(tmp_path):
    x = dj.Input((3,), name="x")
    model = dj.Model(x, layers.Dense(1, name="d")(layers.Dense(2, name="c")(x)))
    model.compile("sgd", "mse")
    x, y = np.ones((16, 3), np.float32), np.ones((16, 1), np.float32)
    with pytest.warns(UserWarning, match="activation and gradient histograms need validation"):
        model.fit(x, y, batch_size=8, epochs=1, callbacks=[callbacks.TensorBoard(tmp_path, histogram_freq=1)])
    tags = read_run(tmp_path / "train").Tags()["histograms"]
    assert set(tags) == {f"{w}/histogram" for w in weight_tags(model)}


def test_bad_arguments_are_clear(tmp_path):
    with pytest.raises(ValueError, match="update_freq"):
        callbacks.TensorBoard(tmp_path, update_freq=0)
    with pytest.raises(ValueError, match="histogram_freq"):
        callbacks.TensorBoard(tmp_path, histogram_freq=-1)
    model = build_model()
    model.compile("sgd", "binary_crossentropy")
    tb = callbacks.TensorBoard(tmp_path, embeddings_freq=1, embeddings_metadata={"nope": "m.tsv"})
    with pytest.raises(ValueError, match=r"\['nope'\].*Embedding layers are \['embed'\]"):
        model.fit(*data(8), epochs=1, verbose=0, callbacks=[tb])


def test_missing_writer_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r"dagjax\[tensorboard\]"):
        callbacks.TensorBoard(tmp_path)


# --------------------------------------------------------------------- the example, served by TensorBoard


@pytest.fixture(scope="module")
def example_logs(tmp_path_factory):
    spec = importlib.util.spec_from_file_location(
        "tensorboard_imdb_like", EXAMPLES / "tensorboard_imdb_like.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    log_dir = tmp_path_factory.mktemp("imdb_like")
    model, history = example.main(str(log_dir), epochs=2, samples=200, batch_size=64)
    assert [layer.name for layer in model.layers][0] == "embed"
    assert len(history.history["val_loss"]) == 2
    return log_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture(scope="module")
def server(example_logs):
    """A real TensorBoard on 127.0.0.1, stopped at the end; waits (60 s at most) until both runs load."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(example_logs)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--load_fast=false", "--reload_interval=1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(f"{url}/data/runs") == b'["train", "validation"]':
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"TensorBoard did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        process.stderr.close()


def test_tensorboard_server_serves_runs_tags_graph_and_projector(server):
    import json

    tags = json.loads(get(f"{server}/data/plugin/scalars/tags"))
    assert {"epoch_loss", "epoch_acc", "epoch_learning_rate"} <= set(tags["train"])
    assert {"epoch_loss", "epoch_acc", "evaluation_loss_vs_iterations"} <= set(tags["validation"])
    histograms = json.loads(get(f"{server}/data/plugin/histograms/tags"))["train"]
    assert {"embed/embeddings/histogram", "conv1d/activations", "dense/kernel/gradient"} <= set(histograms)
    graph = get(f"{server}/data/plugin/graphs/graph?run=train").decode()
    assert 'name: "embed"' in graph and 'input: "embed"' in graph and 'op: "Conv1D"' in graph
    info = json.loads(get(f"{server}/data/plugin/projector/info?run=."))
    assert [e["tensorName"] for e in info["embeddings"]] == [
        "embed/embeddings/epoch_0",
        "embed/embeddings/epoch_1",
    ]
    tensor = get(f"{server}/data/plugin/projector/tensor?run=.&name=embed/embeddings/epoch_1")
    assert len(tensor) == 2000 * 32 * 4  # float32 rows of the (2000, 32) matrix
    scalars = json.loads(get(f"{server}/data/plugin/scalars/scalars?run=validation&tag=epoch_loss"))
    assert [row[1] for row in scalars] == [0, 1]


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium for the headless screenshot")
def test_chromium_screenshot_of_the_scalars_page(server, tmp_path):
    target = tmp_path / "scalars.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--window-size=1200,800", "--virtual-time-budget=8000", f"--screenshot={target}"]
    subprocess.run([*command, f"{server}/#scalars"], capture_output=True, timeout=90, check=True)
    png = target.read_bytes()
    assert png.startswith(b"\x89PNG") and struct.unpack(">II", png[16:24]) == (1200, 800)
    assert len(png) > 20_000  # a rendered page, not a blank one
