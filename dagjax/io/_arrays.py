"""Named arrays in one zip file, written atomically and read back with every check.

The file is a zip archive: ``manifest.json`` (format, version, the caller's
metadata, and for each array its path, shape, dtype and member name) plus one
``.npy`` member per array. Why this format:

- numpy is already a dependency, and ``.npy`` read with ``allow_pickle=False``
  never executes code from the file;
- zip keeps a CRC-32 per member, so a flipped byte or a truncated file is
  caught when it is read, never turned into a silently wrong array;
- dtypes numpy cannot name on its own (bfloat16, float8) are stored as an
  unsigned-int view of the same bytes, with the real dtype in the manifest.

Writes go to a temporary file in the target's directory, which is flushed,
fsynced and then renamed over the target (``os.replace`` is atomic), and the
directory is fsynced: a process killed mid-save leaves the previous file whole.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import zipfile
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

import jax.numpy as jnp
import numpy as np

FORMAT = "dagjax"
VERSION = 1
MANIFEST = "manifest.json"

Path = tuple[str, ...]


class CheckpointError(ValueError):
    """A model or weights file that cannot be read, or does not fit the model it is loaded into."""


def show(path: Path) -> str:
    """``("params", "dense", "kernel")`` -> ``"params/dense/kernel"``, for messages."""
    return "/".join(path)


# ------------------------------------------------------------------ dtypes
def _encode(path: Path, value: Any) -> tuple[np.ndarray, str]:
    """The array to store and the name of its real dtype."""
    try:
        array = np.asarray(value)
    except Exception as err:
        raise TypeError(f"Cannot save '{show(path)}': a {type(value).__name__} is not an array.") from err
    if array.dtype.kind in "biufc":
        return array, array.dtype.name
    if array.dtype.kind == "V" and array.dtype.names is None and array.dtype.itemsize in (1, 2, 4, 8):
        # ml_dtypes (bfloat16, float8_*): store the raw bytes as unsigned ints.
        return array.view(f"uint{8 * array.dtype.itemsize}"), array.dtype.name
    raise TypeError(
        f"Cannot save '{show(path)}': dtype {array.dtype} is not a numeric array dtype "
        "(model files hold numbers only, never pickled objects)."
    )


def _decode(stored: np.ndarray, dtype_name: str) -> np.ndarray:
    dtype = np.dtype(jnp.dtype(dtype_name))
    return stored if stored.dtype == dtype else stored.view(dtype)


# ------------------------------------------------------------------ atomic write
def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if os.path.isdir(path):
        raise IsADirectoryError(f"Cannot save to '{path}': it is a directory; give a file path.")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # os.open applies the umask, so the saved file gets the usual permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def write_archive(path: str | os.PathLike, metadata: dict, arrays: Iterable[tuple[Path, Any]]) -> None:
    """Save ``arrays`` (``(path, array)`` pairs) and JSON ``metadata`` to ``path``, atomically."""
    encoded = [(tuple(p), *_encode(tuple(p), value)) for p, value in arrays]
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


# ------------------------------------------------------------------ checked read
def _broken(path: str, what: str) -> CheckpointError:
    return CheckpointError(
        f"'{path}' is not a complete dagjax file: {what}. It may be truncated (a copy or save "
        "that did not finish) or corrupted; load an earlier copy."
    )


def _read_manifest(zf: zipfile.ZipFile, path: str) -> dict:
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except KeyError:
        raise CheckpointError(f"'{path}' is a zip archive but not a dagjax file: no {MANIFEST}.") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise _broken(path, f"its {MANIFEST} cannot be read ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a dagjax file: its manifest does not say format '{FORMAT}'.")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise CheckpointError(
            f"'{path}' has dagjax file format version {manifest.get('version')!r}; this dagjax reads "
            f"versions up to {VERSION}. Upgrade dagjax to load it."
        )
    return manifest


def _read_array(zf: zipfile.ZipFile, path: str, entry: dict) -> np.ndarray:
    name = show(entry["path"])
    try:
        data = zf.read(entry["member"])  # checks the member's CRC-32
    except KeyError:
        raise _broken(path, f"array '{name}' is listed but its member {entry['member']} is missing") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise _broken(path, f"array '{name}' cannot be read ({err})") from err
    try:
        stored = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        array = _decode(stored, entry["dtype"])
    except (ValueError, TypeError) as err:
        raise _broken(path, f"array '{name}' is not a plain numeric .npy array ({err})") from err
    if list(array.shape) != list(entry["shape"]):
        expected = tuple(entry["shape"])
        raise _broken(path, f"array '{name}' has shape {array.shape}, its manifest says {expected}")
    return array


def read_archive(path: str | os.PathLike) -> tuple[dict, dict[Path, np.ndarray]]:
    """``(manifest, {path: array})`` from a file written by :func:`write_archive`, fully checked."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No dagjax file at '{path}'.")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError) as err:
        raise _broken(path, f"it is not a readable zip archive ({err})") from err
    with zf:
        manifest = _read_manifest(zf, path)
        arrays: dict[Path, np.ndarray] = {}
        for entry in manifest.get("arrays", []):
            try:
                key = tuple(entry["path"])
                arrays[key] = _read_array(zf, path, entry)
            except (KeyError, TypeError) as err:
                raise _broken(path, f"its manifest has a malformed array entry {entry!r:.200}") from err
    return manifest, arrays
