"""``PyDataset``: Keras's base class for a data set read batch by batch, by index.

``fit``, ``evaluate`` and ``predict`` read any object with ``__len__`` and
``__getitem__`` this way (``dagjax.training.fit._streams``): in a new shuffled
order each epoch when ``shuffle``, calling ``on_epoch_begin`` / ``on_epoch_end``
around each epoch. This class gives Keras code its base class and the defaults
of its hooks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any


class PyDataset:
    """Subclass it with ``__len__`` (batches per epoch) and ``__getitem__(index) -> batch``.

    A batch is ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, as ``fit``
    takes them. ``on_epoch_end`` is the place to reshuffle. With ``workers=n > 1``
    ``n`` threads read up to ``max_queue_size`` batches ahead, in order (as Keras
    with ``use_multiprocessing=False``); ``use_multiprocessing=True`` is refused.

    >>> class Squares(PyDataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, index):
    ...         x = np.arange(8.0).reshape(8, 1) + 8 * index
    ...         return x, x**2
    """

    workers = 1
    use_multiprocessing = False
    max_queue_size = 10

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10) -> None:
        if use_multiprocessing:
            raise NotImplementedError(
                f"PyDataset(use_multiprocessing=True): dagjax reads batches in threads only "
                f"(workers={workers} threads, as Keras with use_multiprocessing=False). Threads help when "
                "__getitem__ waits on files or numpy (both release the GIL); for Python-bound work, "
                "prepare the data once, in memory, before fit."
            )
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"PyDataset(workers={workers!r}): workers must be a positive int.")
        self.workers, self.use_multiprocessing, self.max_queue_size = workers, False, max_queue_size

    def __getitem__(self, index: int) -> Any:
        """Batch number ``index`` (``0 <= index < len(self)``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(self, index).")

    @property
    def num_batches(self) -> int | None:
        """Batches per epoch: ``len(self)`` where the subclass defines ``__len__`` (None: endless)."""
        return len(self) if hasattr(self, "__len__") else None

    def __iter__(self) -> Iterator:
        """Every batch in order; an endless data set (no ``__len__``) never stops."""
        count = self.num_batches
        for index in range(count) if count is not None else itertools.count():
            yield self[index]

    def on_epoch_begin(self) -> None:
        """Called before each epoch; does nothing unless overridden."""

    def on_epoch_end(self) -> None:
        """Called after each epoch (reshuffle here); does nothing unless overridden."""
