"""Reading a file written by :func:`~dagjax.io._arrays.write_archive`, every part checked."""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from dagjax.io._arrays import FORMAT, MANIFEST, VERSION, CheckpointError, Path, decode, show


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
        array = decode(stored, entry["dtype"])
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
