"""Keras 3 ``.keras`` files: read into a dagjax model, and written from one.

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` (the model's config, translated
by :mod:`._keras_config`) and ``model.weights.h5``, an HDF5 file that holds each layer's
variables at ``layers/<key>/vars/<i>`` (Keras's ``saving_lib``): ``<key>`` is the snake_case of
the layer's class, numbered within its model in ``model.layers`` order (``dense``, ``dense_1``,
...), a nested model's layers sit under its own key (``layers/functional/layers/dense/vars``),
an RNN's variables under its ``cell``, a wrapper's layers under its attribute names, and
``<i>`` counts a layer's trainable variables then its non-trainable ones, as dagjax's
``weight_paths`` does.

Reading trusts nothing in the file: members are read with a size cap (the config as dagjax's
manifest, the weights by what the model built from the config can hold), HDF5 datasets only as
plain numeric arrays whose shape and dtype match the model's weight (checked before reading),
never through links or external storage, and nothing is installed until every weight is read.
Optimizer variables and the compile config are neither read nor written: a model loads
uncompiled. HDF5 needs ``h5py``, an optional dependency (``pip install dagjax[keras-files]``).
"""

from __future__ import annotations

import datetime
import importlib
import io
import json
import math
import os
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

import jax.numpy as jnp
import numpy as np

from dagjax._naming import to_snake_case
from dagjax.io._arrays import CheckpointError, host_value, nested
from dagjax.io._atomic import atomic_write
from dagjax.io._keras_config import from_keras, keras_class_name, to_keras
from dagjax.io._reading import MANIFEST_LIMIT, checked_zip, read_member, zip_member_names
from dagjax.layers import (
    GRU,
    LSTM,
    Bidirectional,
    InputLayer,
    Layer,
    MultiHeadAttention,
    SimpleRNN,
    TimeDistributed,
)
from dagjax.layers._registry import custom_object_scope
from dagjax.layers._serialization import layer_from_config
from dagjax.model import Model

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
KERAS_FORMAT_VERSION = "3.0.0"  # the Keras release whose file layout this writes
_KIND = "Keras"
# model.weights.h5 may hold, besides the weights, an optimizer's variables (Adam: two per weight,
# with EMA three) and HDF5's own records (about 1-2 KB per group or dataset).
_WEIGHT_COPIES = 4
_RECORD_BYTES = 16 * 2**10
_BASE_BYTES = 2**20


class _Group(NamedTuple):
    """One ``.../vars`` group of ``model.weights.h5``: where, whose, and the dagjax weights it holds."""

    path: str
    layer: str
    weights: list[tuple[str, tuple[str, ...]]]  # ("params"|"state", path in that tree), in Keras's order


def _h5py() -> Any:
    try:
        return importlib.import_module("h5py")
    except ImportError as err:
        raise ImportError(
            "Reading and writing Keras .keras files needs h5py (their weights are an HDF5 file): "
            "pip install dagjax[keras-files]"
        ) from err


# ------------------------------------------------------------------ where Keras keeps each weight
def _unique(name: str, used: dict[str, int]) -> str:
    """Keras's ``_get_unique_name``: ``dense``, ``dense_1``, ... within one container."""
    count = used.get(name, -1) + 1
    used[name] = count
    return name if count == 0 else f"{name}_{count}"


def _wrapped(layer: Layer) -> list[tuple[str, Layer]]:
    """A layer's inner layers under the attribute names Keras keeps them at."""
    if isinstance(layer, Bidirectional):
        return [("forward_layer", layer.forward_layer), ("backward_layer", layer.backward_layer)]
    if isinstance(layer, TimeDistributed):
        return [("layer", layer.layer)]
    if isinstance(layer, MultiHeadAttention):
        projections = layer.sublayers
        return [(f"{name}_dense", projections[name]) for name in ("query", "key", "value")] + [
            ("output_dense", projections["attention_output"])
        ]
    if layer.sublayers:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) holds layers a Keras file has no place for."
        )
    return []


def _groups(layer: Layer, prefix: str = "", tree_path: tuple[str, ...] = ()) -> Iterator[_Group]:
    """Every ``vars`` group of ``layer`` and the layers inside it, as Keras's ``_save_state`` walks them."""
    if isinstance(layer, Model):
        yield _Group(f"{prefix}vars", layer.name, [])
        used: dict[str, int] = {}
        for sub in layer.layers:
            key = _unique(to_snake_case(keras_class_name(sub)), used)
            inner = tree_path if isinstance(sub, InputLayer) else (*tree_path, sub.name)
            yield from _groups(sub, f"{prefix}layers/{key}/", inner)
        return
    own = sorted(layer.weight_specs, key=lambda w: not w.trainable)  # stable: trainable first
    weights = [("params" if w.trainable else "state", (*tree_path, w.name)) for w in own]
    if isinstance(layer, (LSTM, GRU, SimpleRNN)):
        yield _Group(f"{prefix}vars", layer.name, [])
        yield _Group(f"{prefix}cell/vars", f"{to_snake_case(type(layer).__name__)}_cell", weights)
    else:
        yield _Group(f"{prefix}vars", layer.name, weights)
    for attr, sub in _wrapped(layer):
        yield from _groups(sub, f"{prefix}{attr}/", (*tree_path, sub.name))
    if isinstance(layer, MultiHeadAttention):  # Keras's weightless inner layers: empty groups
        for attr in ("_dropout_layer", "_softmax"):
            yield _Group(f"{prefix}{attr}/vars", attr, [])


def _leaf(tree: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


# ------------------------------------------------------------------ reading
def is_keras_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zip archive laid out as a Keras 3 ``.keras`` file (by content, not extension)."""
    names = zip_member_names(os.fspath(path))
    return names is not None and CONFIG in names and "manifest.json" not in names


def _read_json(zf: zipfile.ZipFile, members: dict, path: str, name: str) -> Any:
    info = members.get(name)
    if info is None:
        raise CheckpointError(f"'{path}' is not a complete Keras file: it has no {name}.")
    try:
        return json.loads(read_member(zf, info, path, MANIFEST_LIMIT, _KIND))
    except (ValueError, RecursionError) as err:
        raise CheckpointError(f"'{path}': its {name} is not readable JSON ({err}).") from err


def _model_from(config: Any, path: str, custom_objects: dict | None) -> Model:
    """The dagjax model the file's config describes, with fresh weights."""
    try:
        with custom_object_scope(custom_objects):
            model = layer_from_config(from_keras(config, path))
    except CheckpointError:
        raise
    except (ValueError, TypeError, NotImplementedError) as err:  # a layer refused its arguments
        raise CheckpointError(f"{err} (in the Keras file '{path}')") from err
    except (KeyError, IndexError, AttributeError, RecursionError) as err:  # a config of the wrong shape
        raise CheckpointError(
            f"'{path}': its {CONFIG} does not describe a model ({type(err).__name__}: {err!s:.200})."
        ) from err
    if not isinstance(model, Model):
        raise CheckpointError(f"'{path}' holds a {type(model).__name__}, not a model.")
    return model


def _weights_limit(model: Model, groups: list[_Group]) -> int:
    """The most bytes ``model.weights.h5`` may declare for ``model``'s weights (see ``_WEIGHT_COPIES``)."""
    specs = {"params": model.abstract_weights(True), "state": model.abstract_weights(False)}
    nbytes = 0
    for group in groups:
        for collection, tree_path in group.weights:
            spec = _leaf(specs[collection], tree_path)
            nbytes += math.prod(spec.shape) * np.dtype(spec.dtype).itemsize
    records = len(groups) + sum(len(g.weights) for g in groups)
    return _WEIGHT_COPIES * (nbytes + records * _RECORD_BYTES) + _BASE_BYTES


def _h5_child(h5py: Any, group: Any, name: str, kind: type, path: str, where: str) -> Any:
    """``group[name]``, if it is a ``kind`` (Group or Dataset) held in the file itself, not a link."""
    link = group.get(name, getlink=True)
    if link is None:
        raise CheckpointError(f"'{path}': {WEIGHTS} has no '{where}'.")
    if not isinstance(link, h5py.HardLink):
        raise CheckpointError(
            f"'{path}': {WEIGHTS} links '{where}' elsewhere ({type(link).__name__}); refused."
        )
    child = group[name]
    if not isinstance(child, kind):
        raise CheckpointError(
            f"'{path}': {WEIGHTS}'s '{where}' is a {type(child).__name__}, not a {kind.__name__}."
        )
    return child


def _read_group(h5py: Any, root: Any, group: _Group, specs: dict, path: str) -> dict:
    """The arrays of one layer's ``vars`` group, each checked against the model's weight before it is read."""
    node = root
    parts = group.path.split("/")
    for i, part in enumerate(parts):
        node = _h5_child(h5py, node, part, h5py.Group, path, "/".join(parts[: i + 1]))
    if len(node) != len(group.weights):
        raise CheckpointError(
            f"'{path}': layer '{group.layer}' has {len(node)} variables in the file ({group.path}), "
            f"the model's layer {len(group.weights)}."
        )
    out = {}
    for i, (collection, tree_path) in enumerate(group.weights):
        where = f"{group.path}/{i}"
        data = _h5_child(h5py, node, str(i), h5py.Dataset, path, where)
        spec = _leaf(specs[collection], tree_path)
        weight = "/".join(tree_path)
        if data.external or data.is_virtual or data.dtype.kind not in "biuf":
            raise CheckpointError(
                f"'{path}': weight '{weight}' ({where}) is not a plain numeric array (dtype "
                f"{data.dtype}); refused."
            )
        if tuple(data.shape) != tuple(spec.shape) or data.dtype.newbyteorder("=") != np.dtype(spec.dtype):
            raise CheckpointError(
                f"'{path}': weight '{weight}' ({where}) is {tuple(data.shape)} {data.dtype.name} in the "
                f"file, {tuple(spec.shape)} {np.dtype(spec.dtype).name} in the model built from its config."
            )
        out[collection, tree_path] = np.asarray(data[()], dtype=spec.dtype)
    return out


def _read_weights(model: Model, groups: list[_Group], data: bytes, path: str) -> tuple[dict, dict]:
    h5py = _h5py()
    specs = {"params": model.abstract_weights(True), "state": model.abstract_weights(False)}
    leaves: dict = {}
    try:
        with h5py.File(io.BytesIO(data), "r") as root:
            for group in groups:
                if group.weights:
                    leaves.update(_read_group(h5py, root, group, specs, path))
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as err:  # what h5py raises on damaged HDF5 data
        raise CheckpointError(f"'{path}': its {WEIGHTS} cannot be read as HDF5 ({err}).") from err
    trees: dict[str, dict] = {"params": {}, "state": {}}
    for (collection, tree_path), value in leaves.items():
        trees[collection][tree_path] = jnp.asarray(value)
    return nested(trees["params"]), nested(trees["state"])


def load_keras_model(filepath: str | os.PathLike, custom_objects: dict | None = None) -> Model:
    """The dagjax model of a Keras 3 ``.keras`` file, with its weights (uncompiled; see the module doc)."""
    path = os.fspath(filepath)
    with checked_zip(path, _KIND) as (zf, members):
        config = _read_json(zf, members, path, CONFIG)
        if WEIGHTS not in members:
            other = (
                " (its weights are in .npz form, which dagjax does not read)"
                if "model.weights.npz" in members
                else ""
            )
            raise CheckpointError(f"'{path}' is not a complete Keras file: it has no {WEIGHTS}{other}.")
        model = _model_from(config, path, custom_objects)
        groups = list(_groups(model))
        data = read_member(zf, members[WEIGHTS], path, _weights_limit(model, groups), _KIND)
    model.restore_weights(*_read_weights(model, groups, data, path))
    return model


# ------------------------------------------------------------------ writing
def _weights_h5(model: Model, groups: list[_Group]) -> bytes:
    """``model.weights.h5``'s bytes: each group with its layer's name and its arrays ``0``, ``1``, ..."""
    h5py = _h5py()
    params, state = model.weights_view()
    trees = {"params": params, "state": state}
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as root:
        for group in groups:
            node = root.require_group(group.path)
            node.attrs["name"] = group.layer
            for i, (collection, tree_path) in enumerate(group.weights):
                array = np.asarray(host_value(_leaf(trees[collection], tree_path)))
                if array.dtype.kind not in "biuf":
                    raise TypeError(
                        f"Cannot write weight '{'/'.join(tree_path)}' ({array.dtype}) to a Keras file: HDF5 "
                        "holds numpy's own dtypes only."
                    )
                node[str(i)] = array
    return buffer.getvalue()


def save_keras_model(model: Model, filepath: str | os.PathLike) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file that ``keras.models.load_model`` opens (atomically).

    The file holds the architecture, params and state (BatchNormalization's moving statistics);
    not the optimizer's variables nor a compile config, so Keras loads it uncompiled. Every layer
    must be one Keras has: custom layers and Lambda layers are refused, naming the layer.
    """
    if not isinstance(model, Model):
        raise TypeError(f"save_keras_model takes a dagjax Model, got {type(model).__name__}.")
    config = to_keras(model)
    groups = list(_groups(model))
    weights = _weights_h5(model, groups)
    saved = datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")
    metadata = {"keras_version": KERAS_FORMAT_VERSION, "date_saved": saved, "written_by": "dagjax"}

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(METADATA, json.dumps(metadata))
            zf.writestr(CONFIG, json.dumps(config))
            zf.writestr(WEIGHTS, weights)

    atomic_write(filepath, write)
