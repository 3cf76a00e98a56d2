"""In-memory arrays as a data source, and the factories that pick the source for ``fit``'s arguments.

:func:`data_source` makes an :class:`ArraySource` for in-memory arrays or a
:class:`~dagjax.training.fit._streams.StreamSource` for a stream of batches; ``epoch`` gives ``take(count)``
over :class:`~dagjax.training.fit._batching.Chunk` blocks, cut and padded by
:mod:`._batching`.

With ``steps_per_epoch`` an epoch takes that many batches and the next one
carries on where it stopped, as Keras's epoch iterator does: a pass over the
data (one shuffle) can span several epochs, and an epoch that reaches the end
of the data stops there, with a warning, and the next starts a new pass. Each
validation starts at the beginning (``validation_steps`` takes the first batches).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from dagjax.training.fit._batching import (
    Chunk,
    DataSource,
    Take,
    array_batches,
    device_epoch,
    epoch_plan,
    epoch_rows,
    host_epoch,
    pass_order,
    pass_rows,
    warn_short_epoch,
)
from dagjax.training.fit._data import (
    ArrayData,
    array_data,
    is_stream,
    leaves,
    split,
)
from dagjax.training.fit._distributed import current_distribution, local_batch_size, multi_process, put_whole
from dagjax.training.fit._streams import Replayed, StreamSource

if TYPE_CHECKING:
    from dagjax.model import Model

_DEVICE_FRACTION = 0.4  # at most this share of free accelerator memory holds a data set

_HOST_DEVICE_LIMIT = 2 << 30  # bytes a data set may take when the "device" is the CPU


def nbytes(data: ArrayData) -> int:
    """Bytes the data set's arrays (inputs, targets, sample weights) take."""
    return sum(
        int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in jax.tree_util.tree_leaves(leaves(data))
    )


def fits_on_device(size_bytes: int) -> bool:
    """Whether a data set of ``size_bytes`` can stay on the default device for a whole fit."""
    device = jax.devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        free = stats["bytes_limit"] - stats.get("bytes_in_use", 0)
        return size_bytes <= _DEVICE_FRACTION * free
    return size_bytes <= _HOST_DEVICE_LIMIT


def data_source(
    model: Model,
    x: Any,
    y: Any,
    sample_weight: Any,
    class_weight: dict | None,
    batch_size: int,
    steps: int | None,
    needed: list[bool] | None,
    shuffle: bool,
) -> DataSource:
    """From ``fit``/``evaluate`` arguments: arrays (lists, dicts) or a stream of batches.

    In a multi-process run ``batch_size`` is the global batch of arrays: this process reads its share of
    it. A stream's batches are this process's share as they come (Keras ignores ``batch_size`` there).
    """
    if is_stream(x):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "When x is a data generator, it yields the targets too; do not pass y or sample_weight."
            )
        return StreamSource(model, x, batch_size, steps, shuffle, needed, class_weight)
    arrays = array_data(model, x, y, sample_weight, class_weight, needed)
    return ArraySource(model, arrays, local_batch_size(batch_size), steps, shuffle, class_weight)


def eval_source(
    model: Model, data: Any, batch_size: int, steps: int | None, needed: list[bool]
) -> DataSource:
    """``fit``'s validation data; a one-shot generator is kept as read, to validate on every epoch."""
    if is_stream(data):
        if isinstance(data, Iterator):
            data = Replayed(data)
        return data_source(model, data, None, None, None, batch_size, steps, needed, False)
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError("validation_data must be (x, y), (x, y, sample_weight) or a data generator.")
    x, y, sample_weight = (*data, None)[:3]
    return data_source(model, x, y, sample_weight, None, batch_size, steps, needed, False)


class ArraySource(DataSource):
    """In-memory arrays, read in passes of ``pass_rows`` batches with one shuffle each.

    Arrays that fit go to the device once and are shuffled and gathered
    there; bigger ones come as host batches. An epoch with no padding at all
    has no mask (``None``), and its step program none of the masking arithmetic.
    """

    def __init__(
        self,
        model: Model,
        arrays: ArrayData,
        batch_size: int,
        steps: int | None,
        shuffle: bool,
        class_weight: dict | None = None,
    ) -> None:
        super().__init__(model, batch_size, steps, shuffle)
        self._class_weighted = class_weight is not None  # the sample weights come from class_weight
        self._use(arrays)

    def _use(self, arrays: ArrayData) -> None:
        """Hold ``arrays``: no pass begun yet, nothing placed on the device yet.

        A batch size above the sample count becomes the sample count, as Keras
        trains one batch of all the data: padding follows the data, never the argument.
        """
        self.arrays = arrays
        self.batch_size = min(self.batch_size, arrays.size)
        self._shapes_from(arrays)
        self._device: tuple | None = None  # the arrays on the device, once placed
        self._pass = None  # the current pass's shuffle: ``_plan``'s result
        self._row = 0  # the batch of the current pass the next epoch starts at
        self._planned: tuple | None = None  # (seed, plan) made ahead by ``prepare``

    def _on_device(self) -> tuple | None:
        """The arrays on the device (placed on first use), or None if they are too big for it."""
        if multi_process(current_distribution()):  # each process holds other data: batches come from the host
            return None
        if self._device is None and fits_on_device(nbytes(self.arrays)):
            self._device = put_whole(leaves(self.arrays))
        return self._device

    def split(self, validation_split: float, batch_size: int, steps: int | None) -> ArraySource:
        """Keep the first part for training; the returned source holds the last part, unshuffled."""
        train, val = split(self.arrays, validation_split)
        if self._class_weighted:  # its weights are for training: Keras validates unweighted
            val = val._replace(sample_weight=None)
        self._use(train)
        return ArraySource(self.model, val, local_batch_size(batch_size), steps, False)

    @property
    def steps_per_epoch(self) -> int:
        """``steps`` if given, else the batches in one pass over the arrays."""
        return pass_rows(self.arrays.size, self.batch_size) if self.steps is None else self.steps

    def epoch(self, capacity: int, seed: int, step: int = 0) -> Take:
        """``take(count) -> Chunk | None`` over the next epoch; ``capacity`` caps a host block.

        A pass's shuffle is drawn with ``(seed, the train step it starts at)``:
        ``step`` is this epoch's first step, and a pass begun ``row`` batches
        earlier began ``row`` steps earlier. So a run resumed mid-pass
        (``skip_epochs``) draws the same shuffle as the run it resumes.
        """
        device = self._on_device()
        rows = pass_rows(self.arrays.size, self.batch_size)
        if self._pass is None or self._row == 0:
            self._pass = self._pass_plan((seed, step - self._row))
        start, count = self._row, self._epoch_rows(rows)
        warn_short_epoch(self.steps, count)
        self._row = (start + count) % rows
        if device is None:
            batches = array_batches(self.arrays, self.batch_size, self._pass, start, count)
            return host_epoch(batches, self.batch_size, capacity)
        return device_epoch(device, self._pass, start, count)

    def unshuffled_pass(self) -> Chunk | None:
        """One pass over the arrays on the device, unshuffled (an epoch's differs only in its order;
        placing the arrays is no more than the first epoch does); None when they come as host batches."""
        device = self._on_device()
        if device is None:
            return None
        size, batch_size = self.arrays.size, self.batch_size
        return Chunk(device, *epoch_plan(0, size, batch_size, False), 0, pass_rows(size, batch_size))

    def _pass_plan(self, seed: Any):
        """A new pass's shuffle for ``seed``: the one ``prepare`` drew for that seed, else drawn now."""
        planned, self._planned = self._planned, None
        return planned[1] if planned is not None and planned[0] == seed else self._plan(seed)

    def _plan(self, seed: Any):
        """One pass's shuffle: ``(idx, mask)`` on the device, or the sample order for host batches."""
        size, shuffle = self.arrays.size, bool(self.shuffle)
        if self._on_device() is None:
            return pass_order(seed, size, shuffle)
        return epoch_plan(seed, size, self.batch_size, shuffle)

    def _epoch_rows(self, rows: int) -> int:
        """Batches the next epoch takes: ``steps``, or what is left of the pass if that is less."""
        return epoch_rows(rows - self._row, self.steps)

    def prepare(self, seed: int, step: int) -> None:
        """Draw the shuffle of the epoch starting at ``step`` now, for ``epoch`` to use (device data only).

        ``fit`` calls this while the device still runs the previous epoch, so
        the next one starts without waiting for the host. Nothing to draw when
        the next epoch carries on with the current pass.
        """
        if self._device is not None and self._row == 0:
            self._planned = ((seed, step), self._plan((seed, step)))

    def skip_epochs(self, count: int) -> None:
        """Move to where ``count`` epochs from the start would leave the data, without reading it.

        For a run resumed at a later epoch (``BackupAndRestore``): with
        ``steps_per_epoch`` an epoch may begin mid-pass.
        """
        if self.steps is None:
            return
        rows = pass_rows(self.arrays.size, self.batch_size)
        for _ in range(count):
            self._row = (self._row + self._epoch_rows(rows)) % rows

    def restart(self) -> None:
        """Start the next epoch at the first batch of a new pass."""
        self._row = 0

    def end_epoch(self) -> None:
        """Nothing: arrays have no epoch hooks."""


