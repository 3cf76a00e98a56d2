"""Embedding matrices for TensorBoard's Projector tab, with no checkpoint format.

Each logged epoch writes every Embedding layer's matrix as a TSV file under
``log_dir/embeddings/<layer path>/epoch_<n>.tsv`` and rewrites
``log_dir/projector_config.pbtxt`` (where Keras writes it) to list them all,
so the Projector can show and compare each snapshot. Paths in the config are
relative to ``log_dir``, as the Projector requires; a metadata file given
outside ``log_dir`` is copied in next to its layer's snapshots.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

import jax
import numpy as np

from dagjax.callbacks._tb_histograms import leaf
from dagjax.layers import Embedding

if TYPE_CHECKING:
    from dagjax.model import Model

CONFIG_NAME = "projector_config.pbtxt"


def embedding_layers(model: Model, prefix: tuple = ()) -> list[tuple[tuple, object]]:
    """``(path, layer)`` of every Embedding layer in ``model``, nested models included."""
    from dagjax.utils._layer_graph import is_model

    found = []
    for layer in model.operations:
        path = (*prefix, layer.name)
        if isinstance(layer, Embedding):
            found.append((path, layer))
        elif is_model(layer):
            found.extend(embedding_layers(layer, path))
    return found


def _inside(log_dir: str, relative: str) -> str:
    """``log_dir/relative``, refused if it would land outside ``log_dir`` (a layer named ``..``)."""
    root = os.path.realpath(log_dir)
    target = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, target]) != root:
        raise ValueError(
            f"TensorBoard would write '{relative}' outside its log_dir '{log_dir}': a layer or model name "
            "on that path ('..') is not a file name. Rename the layer."
        )
    return target


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class ProjectorWriter:
    """Writes embedding snapshots and the projector config of one model into ``log_dir``."""

    def __init__(self, log_dir: str, model: Model, metadata: str | dict | None = None) -> None:
        self.log_dir = log_dir
        self.layers = embedding_layers(model)
        names = {path[-1] for path, _ in self.layers} | {"/".join(path) for path, _ in self.layers}
        if isinstance(metadata, dict):
            unknown = sorted(set(metadata) - names)
            if unknown:
                raise ValueError(
                    f"embeddings_metadata names layers {unknown} that are not Embedding layers of model "
                    f"'{model.name}'; its Embedding layers are {sorted('/'.join(p) for p, _ in self.layers)}."
                )
        self.metadata = metadata
        self.entries: dict[tuple, dict] = {}

    def _metadata_for(self, path: tuple) -> str | None:
        given = self.metadata
        if isinstance(given, dict):
            given = given.get("/".join(path), given.get(path[-1]))
        if given is None:
            return None
        given = os.fspath(given)
        if os.path.exists(os.path.join(self.log_dir, given)) or not os.path.exists(given):
            return given  # relative to log_dir, as Keras reads it
        local = "/".join(("embeddings", *path, "metadata.tsv"))
        target = _inside(self.log_dir, local)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(given, target)
        return local

    def write(self, params: dict, epoch: int) -> None:
        """Snapshot every embedding matrix in ``params`` for ``epoch`` and rewrite the config."""
        matrices = jax.device_get([leaf(params, (*path, "embeddings")) for path, _ in self.layers])
        for (path, _), matrix in zip(self.layers, matrices):
            relative = "/".join(("embeddings", *path, f"epoch_{epoch}.tsv"))
            target = _inside(self.log_dir, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            np.savetxt(target, np.asarray(matrix, np.float32), delimiter="\t", fmt="%.7g")
            self.entries[(path, epoch)] = {
                "tensor_name": "/".join(path) + f"/embeddings/epoch_{epoch}",
                "tensor_path": relative,
                "metadata_path": self._metadata_for(path),
                "shape": matrix.shape,
            }
        self._write_config()

    def _write_config(self) -> None:
        blocks = []
        for entry in self.entries.values():
            lines = [f"  tensor_name: {_quote(entry['tensor_name'])}"]
            lines += [f"  tensor_shape: {d}" for d in entry["shape"]]
            lines.append(f"  tensor_path: {_quote(entry['tensor_path'])}")
            if entry["metadata_path"]:
                lines.append(f"  metadata_path: {_quote(entry['metadata_path'])}")
            blocks.append("embeddings {\n" + "\n".join(lines) + "\n}\n")
        os.makedirs(self.log_dir, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.log_dir, prefix=".projector_config")
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write("".join(blocks))
        os.replace(temporary, os.path.join(self.log_dir, CONFIG_NAME))
