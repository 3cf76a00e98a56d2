"""Streams of batches (generators, data loaders, ``keras.utils.PyDataset``) as data sources for ``fit``.

A generator continues across epochs; a re-iterable stream starts over when a
pass ends; a sequence of batches (``len`` and ``[i]``) is read in a new
shuffled order each pass and told when epochs begin and end, as Keras does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dagjax.training.fit._batching import DataSource, Take, host_epoch, pass_order, warn_short_epoch
from dagjax.training.fit._data import (
    ArrayData,
    check_same_targets,
    checked_item,
    indexable,
    leaves,
    target_shapes,
)
from dagjax.training.fit._read_ahead import read_ahead

if TYPE_CHECKING:
    from dagjax.model import Model


def stream_pass(stream: Any, order: Any = None) -> Iterator:
    """One pass over a stream: a sequence (``len``, ``[i]``) by index, in ``order`` if given."""
    if indexable(stream):
        indices = range(len(stream)) if order is None else order
        workers = getattr(stream, "workers", 1)
        if isinstance(workers, int) and workers > 1:  # a PyDataset(workers=n): n threads read ahead
            return read_ahead(stream, indices, workers, getattr(stream, "max_queue_size", 10))
        return (stream[int(i)] for i in indices)
    return iter(stream)


_END = object()


class Replayed:
    """A one-shot iterator of batches made re-iterable: every pass replays what it yielded so far.

    ``fit`` wraps a generator given as ``validation_data`` in one, so each
    validation sees the same batches instead of an exhausted generator. The
    batches stay in host memory for the length of the ``fit``.
    """

    def __init__(self, iterator: Iterator) -> None:
        self._source, self._seen = iterator, []

    def __iter__(self) -> Iterator:
        """The batches seen so far, then new ones from the iterator (kept for the next pass)."""
        for i in itertools.count():
            if i == len(self._seen):
                item = next(self._source, _END)
                if item is _END:
                    return
                self._seen.append(item)
            yield self._seen[i]


def _dataset_hook(stream: Any, name: str) -> None:
    hook = getattr(stream, name, None)
    if callable(hook):
        hook()


class StreamSource(DataSource):
    """A stream of batches (a generator, a data loader, a ``keras.utils.PyDataset``), read as host batches.

    A generator continues across epochs; a re-iterable stream starts over
    when a pass ends. A sequence of batches (``len`` and ``[i]``: a
    ``keras.utils.PyDataset``) is read in a new shuffled order each pass when
    ``shuffle``, and its ``on_epoch_begin`` / ``on_epoch_end`` are called, as
    Keras does.
    """

    def __init__(
        self,
        model: Model,
        stream: Any,
        batch_size: int,
        steps: int | None,
        shuffle: bool,
        needed: list[bool] | None,
        class_weight: dict | None = None,
    ) -> None:
        super().__init__(model, batch_size, steps, shuffle)
        self.stream, self.needed, self.class_weight = stream, needed, class_weight
        self._iterator = None  # the stream's current pass (None: the next epoch starts one)
        self._pending: ArrayData | None = None  # a first batch read ahead (for the shapes), not yet yielded
        if indexable(stream):  # read its first batch, without starting a pass (it may be shuffled)
            first = checked_item(model, stream[0], needed, class_weight) if len(stream) else None
        else:  # the first batch read stays the pass's first
            self._iterator = iter(stream)
            item = next(self._iterator, None)
            first = None if item is None else checked_item(model, item, needed, class_weight)
            self._pending = first
        if first is None:
            raise ValueError("The data set is empty: the generator yields no batches.")
        self._shapes_from(first)

    def split(self, validation_split: float, batch_size: int, steps: int | None) -> DataSource:
        """Always raises: a stream cannot be split without reading it; validation_data is the way."""
        raise ValueError("validation_split needs in-memory arrays; pass validation_data with a generator.")

    @property
    def steps_per_epoch(self) -> int | None:
        """``steps`` if given, else the stream's ``len`` (None for a generator, which has none)."""
        if self.steps is not None:
            return self.steps
        try:
            return len(self.stream)
        except TypeError:
            return None

    def epoch(self, capacity: int, seed: int, step: int = 0) -> Take:
        """``take(count) -> Chunk | None`` over the next ``steps`` batches; ``capacity`` caps a block.

        ``(seed, step)`` seeds the shuffle of a pass that begins in this epoch.
        """
        _dataset_hook(self.stream, "on_epoch_begin")
        return host_epoch(itertools.islice(self._batches((seed, step)), self.steps), None, capacity)

    def restart(self) -> None:
        """Begin a new pass next epoch (``iter(stream)`` again: a generator carries on where it is)."""
        if self._pending is None:  # a pending first batch is where the next pass starts anyway
            self._iterator = None

    def end_epoch(self) -> None:
        """Call the stream's ``on_epoch_end`` if it has one (a ``keras.utils.PyDataset``), as Keras does."""
        _dataset_hook(self.stream, "on_epoch_end")

    def prepare(self, seed: int, step: int) -> None:
        """Nothing: a stream's pass draws its shuffle as it begins."""

    def skip_epochs(self, count: int) -> None:
        """Nothing: a stream cannot be skipped without being read, so a resumed run starts it afresh."""

    def _new_pass(self, seed: Any) -> Iterator:
        """A pass over the stream; an indexable one (``len``, ``[i]``) in shuffled order if asked."""
        stream = self.stream
        if self.shuffle and indexable(stream):
            return stream_pass(stream, pass_order(seed, len(stream), True))
        return stream_pass(stream)

    def _batches(self, seed: Any) -> Iterator[tuple]:
        """The stream's next batches, checked: a new pass, or the rest of the current one (``steps``).

        A pass that ran out just as the last epoch ended starts again here,
        so an epoch only comes up empty when the stream has nothing more.
        """
        got = 0
        if self._pending is not None:
            first, self._pending = self._pending, None
            got += 1
            yield leaves(first)
        fresh = self._iterator is None
        while True:
            if self._iterator is None:
                self._iterator = self._new_pass(seed)
            for item in self._iterator:
                got += 1
                batch = checked_item(self.model, item, self.needed, self.class_weight)
                shapes = target_shapes(batch)
                check_same_targets(self.model, self.target_shapes, shapes, "A batch of the data generator")
                yield leaves(batch)
            self._iterator = None
            if got or fresh:
                break
            fresh = True
        if got:
            warn_short_epoch(self.steps, got)
