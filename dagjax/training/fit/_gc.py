"""Full garbage collections held back while a compiled step is dispatched (and maybe compiled).

A CPython full (generation 2) collection walks every tracked object:
about 110k once JAX is imported, 155-170k once a big train step has been
traced, 0.05-0.15 s a pass on this project's CPU, and at that point it
reclaims nothing. Tracing and compiling a 100-block model's step
allocate enough to start two of them. Holding full collections back for
the length of a dispatch lets that work happen at most once, after the
compile: the held-back collection is not skipped (its counter stays past
the restored threshold, so it runs at the next young collection after the
call), the young generations keep collecting meanwhile, and reference
counting frees acyclic garbage as always. A dispatch that does not compile
takes ~0.1 ms, so holding back across it changes nothing in steady state.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable
from typing import Any

_HELD_BACK = 1 << 30  # a third threshold no dispatch reaches
_lock = threading.Lock()
_holders = 0  # calls (in any thread) now holding full collections back
_restore_to = 0  # the third threshold to restore when the last one returns


def full_collections_held_back(program: Callable) -> Callable:
    """``program`` called with CPython's full collections held back until it returns.

    Calls may overlap (threads, nesting): the first to start saves the
    threshold, the last to return restores it. The wrapper's ``__wrapped__``
    is ``program`` (for its ``lower``, ``_cache_size``...).
    """

    @functools.wraps(program)
    def call(*args: Any) -> Any:
        _hold()
        try:
            return program(*args)
        finally:
            _release()

    return call


def _hold() -> None:
    global _holders, _restore_to
    with _lock:
        if _holders == 0:
            young, middle, _restore_to = gc.get_threshold()
            gc.set_threshold(young, middle, _HELD_BACK)
        _holders += 1


def _release() -> None:
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0:
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, _restore_to)
