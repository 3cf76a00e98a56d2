"""Atomic file writes that respect the filesystem: nothing a user saved is ever lost or torn.

A save writes a complete temporary file beside the target, flushes and fsyncs
it, renames it over the target (``os.replace`` is atomic) and fsyncs the
directory, so a process killed mid-save leaves the previous file whole. As a
plain write would, a save follows a symlink to the file it names, refuses a
write-protected file, and keeps an existing file's permissions. Temporaries
left by saves that were killed (their process is gone) are removed by the
next save to the same path. In a multi-process run (``dagjax.distribution.initialize``)
process 0 alone writes (:func:`writes_files`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import BinaryIO

import jax

_TEMPORARY = re.compile(r"\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{12}\.tmp")
_LEGACY_STALE_SECONDS = 3600  # temporaries named without a pid (older versions): stale after an hour


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``'s target, then rename it over the target.

    Only process 0 of a multi-process run writes; the others return at once.
    """
    if not writes_files():
        return
    given = os.fspath(path)
    target = _target(given)
    directory, name = os.path.split(target)
    os.makedirs(directory, exist_ok=True)
    _remove_stale_temporaries(directory, name)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        # os.open applies the umask, so a new file gets the usual permissions; a replaced one keeps its own.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            if os.path.exists(target) and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), os.stat(target).st_mode & 0o7777)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise type(err)(
                err.errno,
                f"Cannot save '{given}': {err.strerror}. A save writes a complete second copy beside the "
                f"file before it replaces it, so it needs room and write permission in '{directory}'",
            ) from err
        raise
    _fsync_directory(directory)


def writes_files() -> bool:
    """Whether this process writes the run's files: process 0 alone in a multi-process run."""
    return jax.process_index() == 0


def _target(given: str) -> str:
    """The file a save to ``given`` writes (a symlink's target); refused if no file or write-protected."""
    if not given or given.endswith(("/", os.sep)):
        raise ValueError(f"Cannot save to {given!r}: give a file path, such as 'model.dj'.")
    target = os.path.realpath(given)
    if os.path.isdir(target):
        raise IsADirectoryError(f"Cannot save to '{given}': it is a directory; give a file path.")
    if os.path.exists(target) and not os.stat(target).st_mode & 0o222:
        raise PermissionError(
            errno.EACCES,
            f"Cannot save to '{given}': the file is write-protected, so it is left as it is (make it "
            "writable or save elsewhere)",
        )
    return target


def _remove_stale_temporaries(directory: str, name: str) -> None:
    """Delete the temporaries of earlier saves to ``name`` whose process is gone (killed mid-save)."""
    for entry in os.listdir(directory):
        match = _TEMPORARY.fullmatch(entry)
        if match is None or match.group("name") != name:
            continue
        path = os.path.join(directory, entry)
        pid = match.group("pid")
        with contextlib.suppress(OSError):
            if pid is not None and not _alive(int(pid)):
                os.unlink(path)
            elif pid is None and time.time() - os.stat(path).st_mtime > _LEGACY_STALE_SECONDS:
                os.unlink(path)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts; this process's own saves are alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
