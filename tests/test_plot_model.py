"""plot_model / model_to_dot (DOT source, Graphviz rendering); summary of shared layers and nested models."""

import os
import re
import shutil
import struct

import pytest

import dagjax as dj
from dagjax import layers


def siamese():
    """Two inputs through a shared Dense and a shared nested encoder, concatenated."""
    enc_in = dj.Input((8,), name="enc_in")
    h = layers.Dense(4, name="e1")(enc_in)
    encoder = dj.Model(enc_in, layers.Dense(3, activation="relu", name="e2")(h), name="encoder")
    a, b = dj.Input((8,), name="a"), dj.Input((8,), name="b")
    shared = layers.Dense(5, name="shared")
    joined = layers.concatenate([shared(a), shared(b), encoder(a), encoder(b)])
    return dj.Model([a, b], layers.Dense(1, name="out")(joined), name="siamese")


def nodes_and_edges(source: str):
    nodes = re.findall(r'^\s*"([^"]+)" \[label=', source, re.M)
    edges = re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', source, re.M)
    return nodes, edges


def test_dot_has_a_box_per_layer_and_an_edge_per_connection():
    source = dj.utils.model_to_dot(siamese(), show_shapes=True)
    nodes, edges = nodes_and_edges(source)
    assert nodes == ["a", "b", "shared", "encoder", "concatenate", "out"]
    assert edges == [
        ("a", "shared"), ("b", "shared"), ("a", "encoder"), ("b", "encoder"),
        ("shared", "concatenate"), ("encoder", "concatenate"), ("concatenate", "out"),
    ]  # fmt: skip
    assert "<b>shared</b> (Dense, shared x2)" in source
    assert "<b>encoder</b> (Functional, shared x2)" in source
    assert "Input shape: <b>[(None, 5), (None, 5), (None, 3), (None, 3)]</b>" in source
    assert "Output shape: <b>(None, 16)</b>" in source
    assert source.startswith('digraph "siamese" {') and "rankdir=TB" in source and "dpi=200" in source


def test_expand_nested_opens_the_model_into_a_cluster():
    source = dj.utils.model_to_dot(siamese(), expand_nested=True, rankdir="LR")
    nodes, edges = nodes_and_edges(source)
    assert nodes == ["a", "b", "shared", "concatenate", "out", "encoder/enc_in", "encoder/e1", "encoder/e2"]
    assert ("a", "encoder/enc_in") in edges and ("b", "encoder/enc_in") in edges
    assert ("encoder/e2", "concatenate") in edges and ("encoder/enc_in", "encoder/e1") in edges
    assert 'subgraph "cluster_encoder" {' in source and "rankdir=LR" in source


def test_labels_follow_the_options():
    model = siamese()
    plain = dj.utils.model_to_dot(model, show_layer_names=False)
    assert "<b>Dense</b>" in plain and "Output shape" not in plain and "<b>out</b>" not in plain
    model.get_layer("out").trainable = False
    rich = dj.utils.model_to_dot(model, show_dtype=True, show_layer_activations=True, show_trainable=True)
    assert "Output dtype: <b>float32</b>" in rich
    assert "Activation: <b>relu</b>" not in rich  # e2 sits inside the collapsed encoder
    assert "Activation: <b>linear</b>" in rich
    assert "<b>Non-trainable</b>" in rich and "<b>Trainable</b>" in rich
    with pytest.raises(ValueError, match="rankdir"):
        dj.utils.model_to_dot(model, rankdir="UP")


def test_sequential_plot():
    model = dj.Sequential([dj.Input((4,), name="x"), layers.Dense(3, name="h"), layers.Dense(1, name="y")])
    assert nodes_and_edges(dj.utils.model_to_dot(model)) == (["x", "h", "y"], [("x", "h"), ("h", "y")])


def test_plot_model_writes_dot_source_without_graphviz(tmp_path):
    path = tmp_path / "model.dot"
    source = dj.utils.plot_model(siamese(), to_file=path, show_shapes=True)
    assert path.read_text() == source and "Output shape" in source


def test_plot_model_without_the_dot_program_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ImportError, match="apt-get install graphviz.*dot -Tpng"):
        dj.utils.plot_model(siamese(), to_file=tmp_path / "model.png")
    assert (tmp_path / "model.dot").read_text().startswith("digraph")


@pytest.mark.skipif(
    shutil.which("dot") is None, reason="needs Graphviz's dot program (apt-get install graphviz)"
)
def test_plot_model_renders_png_and_svg(tmp_path):
    model = siamese()
    dj.utils.plot_model(model, to_file=tmp_path / "model.png", show_shapes=True, expand_nested=True, dpi=96)
    png = (tmp_path / "model.png").read_bytes()
    width, height = struct.unpack(">II", png[16:24])
    assert png.startswith(b"\x89PNG") and width > 300 and height > 300
    dj.utils.plot_model(model, to_file=tmp_path / "model.svg", show_layer_names=True)
    svg = (tmp_path / "model.svg").read_text()
    assert "<svg" in svg and "concatenate" in svg and "shared x2" in svg
    with pytest.raises(ValueError, match="Graphviz could not write"):
        dj.utils.plot_model(model, to_file=tmp_path / "model.nosuchformat")
    assert not os.path.exists(tmp_path / "model.dot")


def test_summary_marks_shared_layers_and_nested_models(capsys):
    model = siamese()
    model.summary()
    plain = capsys.readouterr().out
    assert "shared (Dense, shared x2)" in plain and "a[0][0], b[0][0]" in plain
    assert "encoder (Functional, shared x2)" in plain
    assert "shared[0][0], shared[1][0], encoder[0][0], encoder[1][0]" in plain
    assert "e1 (Dense)" not in plain
    model.summary(expand_nested=True, show_trainable=True)
    expanded = capsys.readouterr().out
    rows = [line for line in expanded.splitlines() if "└" in line]
    assert [r.split("└ ")[1].split(" (")[0] for r in rows] == ["enc_in", "e1", "e2"]
    assert "enc_in[0][0]" in rows[1] and rows[1].rstrip(" |").endswith("Y")
    assert "Trainable" in expanded and f"Total params: {model.count_params():,}" in expanded


def test_summary_counts_layers_frozen_inside_a_nested_model(capsys):
    enc_in = dj.Input((2,))
    frozen = layers.Dense(3, trainable=False)
    encoder = dj.Model(enc_in, frozen(enc_in), name="encoder")
    x = dj.Input((2,))
    model = dj.Model(x, layers.Dense(1)(encoder(x)))
    model.summary(print_fn=print)
    out = capsys.readouterr().out
    assert "Trainable params: 4 (16.00 B)" in out and "Non-trainable params: 9 (36.00 B)" in out


def test_plot_model_defaults_show_shapes_and_names(tmp_path):
    source = dj.utils.plot_model(siamese(), to_file=tmp_path / "model.dot")
    assert "dpi=96" in source and "<b>shared</b>" in source and "(None, 5)" in source
    assert (tmp_path / "model.dot").read_text() == source
