"""``jax.export``'s (de)serialization, with its one optional dependency and its failures said plainly."""

from __future__ import annotations

import jax

from dagjax.export._format import broken

_NEEDS_FLATBUFFERS = (
    "Exporting needs the 'flatbuffers' package, which jax.export serializes programs with: "
    "pip install flatbuffers (or pip install 'dagjax[export]')."
)


def serialize(exported: jax.export.Exported) -> bytes:
    """The program's bytes."""
    try:
        return bytes(exported.serialize())
    except ImportError as err:
        raise ImportError(_NEEDS_FLATBUFFERS) from err


def deserialize(program: bytes, path: str) -> jax.export.Exported:
    """The program in ``program``, read from ``path``; bytes that are not one are a ``CheckpointError``."""
    try:
        return jax.export.deserialize(bytearray(program))
    except ImportError as err:
        raise ImportError(_NEEDS_FLATBUFFERS) from err
    # The flatbuffer reader fails on damaged bytes with struct.error, IndexError, AttributeError,
    # UnicodeDecodeError, ValueError, ...; it only parses, so any failure is the file's.
    except Exception as err:
        raise broken(path, f"its program cannot be read ({type(err).__name__}: {err})") from err
