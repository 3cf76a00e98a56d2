"""Named arrays in one zip file, written atomically (read back, every part checked, by :mod:`._reading`).

The file is a zip archive: ``manifest.json`` (format, version, the caller's
metadata, and for each array its path, shape, dtype and member name) plus one
``.npy`` member per array. Why this format:

- numpy is already a dependency, and ``.npy`` read with ``allow_pickle=False``
  never executes code from the file;
- zip keeps a CRC-32 per member, so a flipped byte or a truncated file is
  caught when it is read, never turned into a silently wrong array;
- dtypes numpy cannot name on its own (bfloat16, float8) are stored as an
  unsigned-int view of the same bytes, with the real dtype in the manifest;
- members are stored uncompressed, so a reader can refuse any compressed one
  (a few compressed bytes can inflate to gigabytes).

Writes are atomic (:mod:`dagjax.io._atomic`): a process killed mid-save
leaves the previous file whole.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable
from typing import Any, BinaryIO

import jax
import numpy as np
from jax.experimental import multihost_utils

from dagjax.io._atomic import atomic_write, writes_files

FORMAT = "dagjax"
VERSION = 1
MANIFEST = "manifest.json"

Path = tuple[str, ...]


class CheckpointError(ValueError):
    """A model or weights file that cannot be read, or does not fit the model it is loaded into."""


def nested(leaves: dict[Path, Any]) -> dict:
    """A nested dict (a params or state tree) from ``{path: value}``."""
    tree: dict = {}
    for path, value in leaves.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def show(path: Path) -> str:
    """``("params", "dense", "kernel")`` -> ``"params/dense/kernel"``, for messages."""
    return "/".join(path)


# ------------------------------------------------------------------ dtypes
def numeric(dtype: np.dtype) -> bool:
    """Whether a file may hold arrays of ``dtype``: numpy's numbers, or ml_dtypes' (bfloat16, float8_*)."""
    extension = dtype.kind == "V" and dtype.type is not np.void and dtype.itemsize in (1, 2, 4, 8)
    return dtype.kind in "biufc" or extension


def storage_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype an array of ``dtype`` is stored as: its own, or for ml_dtypes unsigned ints of its width.

    This is the one case a reader reinterprets bytes (``stored.view(dtype)``):
    numpy cannot name ml_dtypes in a ``.npy`` header, the manifest does.
    """
    return np.dtype(f"uint{8 * dtype.itemsize}") if dtype.kind == "V" else dtype


def split_across_processes(value: Any) -> bool:
    """Whether ``value`` is a JAX array of which no one process holds the whole (a model-parallel
    weight over several processes' devices)."""
    return isinstance(value, jax.Array) and not (value.is_fully_addressable or value.is_fully_replicated)


def host_value(value: Any) -> Any:
    """``value`` whole where this process can read it: an array split across processes is gathered
    (``multihost_utils.process_allgather``, a collective every process joins in the same order);
    any other value is left as it is, since a process holds it whole already."""
    if split_across_processes(value):
        return multihost_utils.process_allgather(value, tiled=True)
    return value


def _encode(path: Path, value: Any) -> tuple[np.ndarray, str]:
    """The array to store and the name of its real dtype."""
    try:
        array = np.asarray(value)
    except Exception as err:
        raise TypeError(f"Cannot save '{show(path)}': a {type(value).__name__} is not an array.") from err
    if not numeric(array.dtype):
        raise TypeError(
            f"Cannot save '{show(path)}': dtype {array.dtype} is not a numeric array dtype "
            "(model files hold numbers only, never pickled objects)."
        )
    return array.view(storage_dtype(array.dtype)), array.dtype.name


# ------------------------------------------------------------------ atomic write
def write_archive(path: str | os.PathLike, metadata: dict, arrays: Iterable[tuple[Path, Any]]) -> None:
    """Save ``arrays`` (``(path, array)`` pairs) and JSON ``metadata`` to ``path``, atomically.

    In a multi-process run only process 0 writes; every process joins the gathering of the arrays
    split across processes (:func:`host_value`), and fetches nothing else from its devices.
    """
    arrays = list(arrays)
    if not writes_files():
        for _, value in arrays:
            if split_across_processes(value):
                host_value(value)
        return
    encoded = [(tuple(p), *_encode(tuple(p), host_value(value))) for p, value in arrays]
    entries = [
        {"path": list(p), "shape": list(stored.shape), "dtype": dtype, "member": f"arrays/{i}.npy"}
        for i, (p, stored, dtype) in enumerate(encoded)
    ]
    manifest = json.dumps({"format": FORMAT, "version": VERSION, **metadata, "arrays": entries}, indent=1)

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr(MANIFEST, manifest)
            for entry, (_, stored, _) in zip(entries, encoded):
                with zf.open(entry["member"], "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, stored, allow_pickle=False)

    atomic_write(path, write)
