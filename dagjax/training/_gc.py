"""Full garbage collections held back while a compiled step is dispatched (and maybe compiled).

A CPython full (generation 2) collection walks every tracked object:
about 110k once JAX is imported, 155-170k once a big train step has been
traced, 0.05-0.15 s a pass on this project's CPU, and at that point it
reclaims nothing. Tracing and compiling a 100-block model's step
allocate enough to start two of them. Holding full collections back for
the length of a dispatch lets that work happen once, after the compile:
the held-back collection still runs (its counter is past the restored
threshold), the young generations keep collecting, and reference counting
frees acyclic garbage as always. A dispatch that does not compile takes
~0.1 ms, so holding back across it changes nothing in steady state.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import Any

_HELD_BACK = 1 << 30  # a third threshold no dispatch reaches


def full_collections_held_back(program: Callable) -> Callable:
    """``program`` called with CPython's full collections held back until it returns.

    The wrapper's ``__wrapped__`` is ``program`` (for its ``lower``, ``_cache_size``...).
    """

    @functools.wraps(program)
    def call(*args: Any) -> Any:
        young, middle, full = gc.get_threshold()
        gc.set_threshold(young, middle, _HELD_BACK)
        try:
            return program(*args)
        finally:
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, full)

    return call
