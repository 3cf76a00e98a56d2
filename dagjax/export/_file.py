"""The export file on disk: written atomically, read with every size and field checked first.

One zip of two stored (uncompressed) members, ``signature.json`` and
``program.bin`` (see :mod:`._format`). One file rather than a directory, so a
save replaces it atomically, as it does a model file, and one copy moves it;
stored members, so a reader can refuse any compressed one (a few compressed
bytes can inflate to gigabytes), and each member keeps a CRC-32, so a flipped
or missing byte fails on read.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import BinaryIO

from dagjax.export._format import PROGRAM, SIGNATURE, Signature, broken, read_signature
from dagjax.io import CheckpointError, atomic_write, checked_zip, read_member

# The signature lists each input, output and (for weights as arguments) weight in about 80 bytes,
# so 8 MiB is some 100,000 weights, while parsing the worst 8 MiB of JSON stays well under a second.
SIGNATURE_LIMIT = 8 * 2**20


def write_file(path: str | os.PathLike, signature: dict, program: bytes) -> None:
    """Write ``signature`` (JSON data) and the serialized ``program`` to ``path``, atomically."""
    text = json.dumps(signature, indent=1)

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr(SIGNATURE, text)
            zf.writestr(PROGRAM, bytes(program))

    atomic_write(path, write)


def _member(members: dict[str, zipfile.ZipInfo], name: str, path: str) -> zipfile.ZipInfo:
    info = members.get(name)
    if info is None:
        raise CheckpointError(f"'{path}' is a zip archive but not a dagjax export: it has no {name}.")
    return info


def read_file(path: str | os.PathLike) -> tuple[Signature, bytes]:
    """``(signature, program bytes)`` from an export file; a bad file is a ``CheckpointError`` naming it."""
    path = os.fspath(path)
    with checked_zip(path) as (zf, members):
        raw = read_member(zf, _member(members, SIGNATURE, path), path, SIGNATURE_LIMIT, "dagjax export")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as err:
            raise broken(path, f"its {SIGNATURE} is not JSON ({err})") from err
        signature = read_signature(data, path)
        info = _member(members, PROGRAM, path)
        # checked_zip checked that the member lies within the file, so the file's own size bounds this read.
        program = read_member(zf, info, path, info.file_size, "dagjax export")
    return signature, program
