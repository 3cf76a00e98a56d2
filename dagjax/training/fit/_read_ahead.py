"""Batches of a ``PyDataset(workers=n)`` read ahead by ``n`` threads, kept in index order.

``__getitem__`` often loads or decodes files, which releases the GIL: reading the
next batches in threads while the device runs the step hides that time, as
Keras does with ``workers`` and ``use_multiprocessing=False``. At most
``max_queue_size`` batches are read ahead; batches come out in index order, so
a run reads the same batches in the same order whatever ``workers`` is.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def read_ahead(stream: Any, indices: Iterable[int], workers: int, depth: int) -> Iterator:
    """``stream[i]`` for each of ``indices``, read by ``workers`` threads up to ``depth`` batches ahead."""
    order = iter(indices)
    pool = ThreadPoolExecutor(workers, thread_name_prefix=f"{type(stream).__name__}-reader")
    pending: collections.deque = collections.deque()
    try:
        for i in itertools.islice(order, max(depth, workers)):
            pending.append(pool.submit(stream.__getitem__, int(i)))
        while pending:
            batch = pending.popleft().result()
            for i in itertools.islice(order, 1):
                pending.append(pool.submit(stream.__getitem__, int(i)))
            yield batch
    finally:  # an epoch that stops early (steps_per_epoch) leaves reads behind: drop them
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
