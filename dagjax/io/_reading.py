"""Reading a file written by :func:`~dagjax.io._arrays.write_archive`, trusting nothing in it.

A file may come from anywhere, so every size, type and name in it is checked
before it is used, and every way it can be wrong is a ``CheckpointError``
naming the file and the problem:

- only a regular file is opened (a FIFO would block, ``/dev/zero`` never ends);
- every zip member must be stored uncompressed, as the writer stores it: a few
  compressed bytes can inflate to gigabytes;
- every size is checked before memory is given to it: the manifest's against a
  cap, an array member's against the bytes its manifest shape and dtype need
  and against the file's own size, an array's ``.npy`` header against its
  manifest entry;
- names are unique (zip members, array paths): a duplicate would give the file
  two meanings, and zip tools disagree on which copy counts;
- an array's stored dtype must be the one its manifest declares (byte order
  aside), so that bytes are never silently reinterpreted.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import zipfile
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

import jax.numpy as jnp
import numpy as np

from dagjax.io._arrays import FORMAT, MANIFEST, VERSION, CheckpointError, Path, numeric, show, storage_dtype

# A layer takes about 2 KB of manifest (its config about 0.75 KB, each of its
# arrays, optimizer moments included, about 0.15 KB), so 8 MiB holds models of
# some 4000 layers, while parsing the worst 8 MiB of JSON (millions of tiny
# objects) costs a few hundred MB and well under a second.
MANIFEST_LIMIT = 8 * 2**20
_NPY_HEADER_LIMIT = 10_000  # numpy's own default cap on a .npy header
_NPY_PREFIX = 12  # the magic string, version and header length (4 bytes in version 2.0) before it
_CHUNK = 2**24  # bytes read at a time into an array (no second copy of a large array)

# What zipfile raises on a damaged archive (NotImplementedError: a version or feature it lacks).
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, OSError, NotImplementedError)


class _Entry(NamedTuple):
    """One array of the manifest, its fields checked."""

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    member: str


def _broken(path: str, what: str) -> CheckpointError:
    return CheckpointError(
        f"'{path}' is not a complete dagjax file: {what}. It may be truncated (a copy or save "
        "that did not finish) or corrupted; load an earlier copy."
    )


def _open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (O_NONBLOCK: opening a FIFO does not wait)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"No dagjax file at '{path}'.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise CheckpointError(f"'{path}' is not a regular file (a directory, FIFO or device).")
    return os.fdopen(fd, "rb")


def _members(zf: zipfile.ZipFile, path: str, size: int) -> dict[str, zipfile.ZipInfo]:
    """The archive's members by name, each checked to be unique, stored plainly, and within the file."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename
        if name in members:
            raise CheckpointError(
                f"'{path}' holds two zip members named '{name}': zip tools disagree on which one counts, "
                "so the file has no single meaning. dagjax never writes such a file."
            )
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            what = "encrypted" if info.flag_bits & 0x1 else f"compressed (method {info.compress_type})"
            raise CheckpointError(
                f"'{path}': its member '{name}' is {what}; dagjax files store every member uncompressed "
                "(a compressed member could inflate to gigabytes), so this is not a dagjax file."
            )
        if info.compress_size != info.file_size or info.header_offset + info.file_size > size:
            raise _broken(path, f"member '{name}' declares {info.file_size} bytes, more than the file holds")
        members[name] = info
    return members


def _read_manifest(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], path: str) -> dict:
    info = members.get(MANIFEST)
    if info is None:
        raise CheckpointError(f"'{path}' is a zip archive but not a dagjax file: no {MANIFEST}.")
    if info.file_size > MANIFEST_LIMIT:
        raise CheckpointError(
            f"'{path}': its {MANIFEST} is {info.file_size} bytes; dagjax reads manifests of up to "
            f"{MANIFEST_LIMIT} bytes, so this is not a dagjax file."
        )
    try:
        manifest = json.loads(zf.read(info))
    except (*_ZIP_ERRORS, ValueError, RecursionError) as err:
        raise _broken(path, f"its {MANIFEST} cannot be read ({err})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a dagjax file: its manifest does not say format '{FORMAT}'.")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise CheckpointError(
            f"'{path}' has dagjax file format version {manifest.get('version')!r}; this dagjax reads "
            f"versions up to {VERSION}. Upgrade dagjax to load it."
        )
    return manifest


def _entry(item: Any) -> _Entry | None:
    """The manifest's array entry ``item`` with its fields checked, or None if it is malformed."""
    if not isinstance(item, dict):
        return None
    path, shape, dtype, member = (item.get(key) for key in ("path", "shape", "dtype", "member"))
    if not (isinstance(path, list) and path and all(isinstance(key, str) for key in path)):
        return None
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        return None
    if not (isinstance(dtype, str) and isinstance(member, str)):
        return None
    try:
        declared = np.dtype(jnp.dtype(dtype))
    except (TypeError, ValueError):
        return None
    if not numeric(declared):
        return None
    return _Entry(tuple(path), tuple(shape), declared.newbyteorder("="), member)


def _entries(manifest: dict, path: str) -> list[_Entry]:
    """The manifest's array entries, each well-formed, no two at the same path."""
    listed = manifest.get("arrays")
    if not isinstance(listed, list):
        raise _broken(path, "its manifest has no list of arrays")
    entries: dict[Path, _Entry] = {}
    for i, item in enumerate(listed):
        entry = _entry(item)
        if entry is None:
            raise _broken(
                path,
                f"its manifest's array entry {i} is malformed (it needs path: a list of names, shape: "
                "a list of sizes, dtype: a numeric dtype's name, member: a name)",
            )
        if entry.path in entries:
            raise CheckpointError(
                f"'{path}' lists array '{show(entry.path)}' twice in its manifest, so the file has no "
                "single meaning. dagjax never writes such a file."
            )
        entries[entry.path] = entry
    return list(entries.values())


def _checked_header(f: BinaryIO, path: str, entry: _Entry) -> tuple[bool, np.dtype]:
    """``(fortran_order, dtype)`` of the ``.npy`` header at the start of ``f``, checked against ``entry``."""
    name = show(entry.path)
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read:
            raise ValueError(f".npy format version {version} (dagjax writes 1.0, or 2.0 for long headers)")
        shape, fortran_order, dtype = read[version](f, max_header_size=_NPY_HEADER_LIMIT)
    # numpy's header parser raises many kinds (ValueError, SyntaxError, tokenize.TokenError,
    # TypeError, ...) on damaged bytes; it reads only those few bytes, so any failure is the file's.
    except Exception as err:
        raise _broken(path, f"array '{name}' is not a plain numeric .npy array ({err})") from err
    if not numeric(dtype):
        raise _broken(path, f"array '{name}' is not a plain numeric .npy array (its dtype is {dtype})")
    if dtype.newbyteorder("=") != storage_dtype(entry.dtype):
        raise _broken(path, f"array '{name}' is stored as {dtype}, its manifest says {entry.dtype.name}")
    if shape != entry.shape:
        raise _broken(path, f"array '{name}' has shape {shape}, its manifest says {entry.shape}")
    return fortran_order, dtype


def _read_exactly(f: BinaryIO, nbytes: int) -> np.ndarray:
    """The next ``nbytes`` of ``f``, read in chunks into one buffer (a large array is never held twice)."""
    raw = np.empty(nbytes, np.uint8)
    for start in range(0, nbytes, _CHUNK):
        chunk = f.read(min(_CHUNK, nbytes - start))  # the last read checks a zip member's CRC-32
        if len(chunk) != min(_CHUNK, nbytes - start):
            raise EOFError("the member ends early")
        raw[start : start + len(chunk)] = np.frombuffer(chunk, np.uint8)
    return raw


def _read_array(zf: zipfile.ZipFile, members: dict, path: str, entry: _Entry) -> np.ndarray:
    """The array ``entry`` describes; its size, header and dtype are checked before its data is read."""
    name = show(entry.path)
    info = members.get(entry.member)
    if info is None:
        raise _broken(path, f"array '{name}' is listed but its member {entry.member} is missing")
    nbytes = math.prod(entry.shape) * entry.dtype.itemsize
    if not nbytes < info.file_size <= nbytes + _NPY_PREFIX + _NPY_HEADER_LIMIT:
        raise _broken(
            path,
            f"array '{name}' of shape {entry.shape} and dtype {entry.dtype.name} needs {nbytes} bytes and "
            f"a .npy header, but its member {entry.member} holds {info.file_size}",
        )
    try:
        with zf.open(info) as f:
            fortran_order, dtype = _checked_header(f, path, entry)
            if f.tell() + nbytes != info.file_size:
                raise _broken(path, f"array '{name}' holds {info.file_size - f.tell()} bytes, not {nbytes}")
            values = _read_exactly(f, nbytes).view(dtype)
    except _ZIP_ERRORS as err:
        raise _broken(path, f"array '{name}' cannot be read ({err})") from err
    if not dtype.isnative:
        values = values.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return values.reshape(entry.shape, order="F" if fortran_order else "C").view(entry.dtype)


@contextlib.contextmanager
def open_zip(path: str) -> Iterator[tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]]:
    """``(zip file, its members by name)`` of the regular file ``path``, the members checked by ``_members``.

    The one way dagjax opens a zip file it wrote: model files here, exports in :mod:`dagjax.export`.
    """
    with _open_regular(path) as file:
        try:
            zf = zipfile.ZipFile(file)
        except (*_ZIP_ERRORS, ValueError) as err:
            raise _broken(path, f"it is not a readable zip archive ({err})") from err
        with zf:
            yield zf, _members(zf, path, os.fstat(file.fileno()).st_size)


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, limit: int) -> bytes:
    """The bytes of member ``info`` (its CRC-32 checked), refused unread when it declares over ``limit``."""
    if info.file_size > limit:
        raise CheckpointError(
            f"'{path}': its {info.filename} is {info.file_size} bytes; dagjax reads at most {limit} bytes "
            "there, so this is not a dagjax file."
        )
    try:
        return zf.read(info)
    except _ZIP_ERRORS as err:
        raise _broken(path, f"its {info.filename} cannot be read ({err})") from err


def read_archive(path: str | os.PathLike) -> tuple[dict, dict[Path, np.ndarray]]:
    """``(manifest, {path: array})`` from a file written by :func:`write_archive`, fully checked."""
    path = os.fspath(path)
    with open_zip(path) as (zf, members):
        manifest = _read_manifest(zf, members, path)
        arrays = {entry.path: _read_array(zf, members, path, entry) for entry in _entries(manifest, path)}
    return manifest, arrays
