"""Batching: a data set cut into fixed-size batches, and batches stacked into blocks for one compiled call.

Every batch has a fixed size: a short batch is padded by wrapping around to
its first samples, and a ``mask`` row marks the padding with 0.0, so one
compiled program serves the whole epoch (``predict`` pads its last batch the
same way and drops the padding rows from the outputs).

``fit`` and ``evaluate`` read an epoch as ``take(count) -> Chunk | None``
(:data:`Take`): the loop asks for as many batches as its next call should
run, a number it learns by timing the calls as they go (``_loop.Loop._chunks``),
so an epoch cannot fix its chunk sizes up front as an iterator would.
:class:`DataSource` is what hands epochs out (arrays in ``_sources``, streams
in ``_streams``).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np

from dagjax.training.fit._data import ArrayData, leaves, take, target_shapes, weight_shapes
from dagjax.training.fit._distributed import current_distribution, global_chunk, multi_process, put_whole

if TYPE_CHECKING:
    from dagjax.model import Model


class Chunk(NamedTuple):
    """Rows ``start .. start+count`` of ``idx``/``mask`` index batches out of ``data`` (all on device).

    ``mask`` is None when no batch of the epoch holds padding.
    """

    data: tuple
    idx: jax.Array
    mask: jax.Array | None
    start: int
    count: int


Take = Callable[[int], Chunk | None]  # an epoch: the next chunk of at most ``count`` batches, None at its end


def pass_rows(size: int, batch_size: int) -> int:
    """Batches in one pass over ``size`` samples (the last one maybe partial)."""
    return math.ceil(size / batch_size)


def pass_order(seed: Any, size: int, shuffle: bool) -> np.ndarray:
    """The order a pass reads ``size`` samples (or a sequence's batches) in: shuffled by ``seed``, or not."""
    return np.random.default_rng(seed).permutation(size) if shuffle else np.arange(size)


def epoch_rows(available: int, steps: int | None) -> int:
    """Batches an epoch takes: ``steps``, or the ``available`` ones if fewer."""
    return available if steps is None else min(steps, available)


def warn_short_epoch(steps: int | None, got: int) -> None:
    """Keras's warning when an epoch asked for ``steps`` batches and its data ran out after ``got``."""
    if steps is not None and got < steps:
        warnings.warn(
            f"The data ran out after {got} of the {steps} steps asked for (steps_per_epoch, validation_steps "
            "or steps): the run stops there, and a next epoch starts a new pass over the data.",
            UserWarning,
            stacklevel=2,
        )


def batch_rows(batch: Any) -> int:
    """Samples in a batch: the leading size of its first array."""
    return jax.tree_util.tree_leaves(batch)[0].shape[0]


def wrap_index(n: int, size: int) -> np.ndarray:
    """``size`` positions over ``n`` samples: ``0 .. n-1``, then around again from the first (padding)."""
    return np.arange(size) % n


def padding_mask(n: int, size: int) -> np.ndarray:
    """1.0 for the first ``n`` of ``size`` rows (the real samples), 0.0 for the padding after them."""
    return (np.arange(size) < n).astype(np.float32)


def host_plan(seed: Any, size: int, batch_size: int, shuffle: bool) -> tuple:
    """``(idx, mask)`` for one pass, in numpy, shaped ``(rows, batch_size)``: batch ``r`` is ``idx[r]``.

    The last batch's missing rows wrap around to the first samples and are
    padding (mask 0.0); with no padding the mask is None. ``seed``: any numpy seed.
    """
    order = pass_order(seed, size, shuffle)
    rows = pass_rows(size, batch_size)
    slots = rows * batch_size
    idx = order[wrap_index(size, slots)].astype(np.int32).reshape(rows, batch_size)
    if slots == size:
        return idx, None
    return idx, padding_mask(size, slots).reshape(rows, batch_size)


def epoch_plan(seed: Any, size: int, batch_size: int, shuffle: bool) -> tuple:
    """:func:`host_plan` placed on the device: the permutation is drawn on the host, the data stays put."""
    return put_whole(host_plan(seed, size, batch_size, shuffle))


def pad_batch(batch: Any, size: int) -> tuple:
    """``batch`` (any tree of arrays) padded to ``size`` rows by wrapping around, and its mask.

    Each array is padded where it lives (numpy on the host, a JAX array on
    its device); a full batch comes back as it is.
    """
    n = batch_rows(batch)
    if n > size:
        raise ValueError(f"A batch of {n} samples is larger than the batch size {size}.")
    if n < size:
        wrap = wrap_index(n, size)
        batch = jax.tree_util.tree_map(lambda v: v[wrap], batch)
    return batch, padding_mask(n, size)


def cut(arrays: Any, batch_size: int, start: int, count: int) -> Iterator:
    """Batches ``start .. start+count`` of ``arrays`` (any tree of arrays), in order, as slices."""
    for row in range(start, start + count):
        yield jax.tree_util.tree_map(lambda v, row=row: v[row * batch_size : (row + 1) * batch_size], arrays)


def array_batches(data: ArrayData, batch_size: int, order: np.ndarray, start: int, count: int) -> Iterator:
    """Host batches ``(x, y, sample_weight)``: batches ``start .. start+count`` of the pass ``order``."""
    for positions in cut(order, batch_size, start, count):
        yield leaves(take(data, positions, positions.size))


def stack_chunk(batches: list[tuple], masks: list[np.ndarray], capacity: int) -> Chunk:
    """Host batches concatenated into one device block of ``capacity`` batches (empty slots masked).

    In a multi-process run the block is global: every process's batches side by side.
    """
    count = len(batches)
    if multi_process(current_distribution()):
        return Chunk(*global_chunk(batches, masks, capacity), 0, count)
    filler = batches[0]
    batches = batches + [filler] * (capacity - count)
    masks = masks + [np.zeros_like(masks[0])] * (capacity - count)
    data = put_whole(jax.tree_util.tree_map(lambda *vs: np.concatenate(vs), *batches))
    batch_size = masks[0].shape[0]
    idx = put_whole(np.arange(capacity * batch_size, dtype=np.int32).reshape(capacity, batch_size))
    return Chunk(data, idx, put_whole(np.stack(masks)), 0, count)


def _layout(batch: tuple) -> tuple:
    """What batches stacked into one block must share: tree structure, dtypes, shapes past the batch dim."""
    values, structure = jax.tree_util.tree_flatten(batch)
    return structure, tuple((np.dtype(v.dtype), tuple(v.shape[1:])) for v in values)


def host_epoch(batches: Iterator[tuple], batch_size: int | None, capacity: int) -> Take:
    """``take(count) -> Chunk | None`` over host batches, stacked up to ``capacity`` to a block.

    A block holds batches of one layout: a batch whose shapes past the batch
    dim (a sequence length, say) or structure differ from the block's starts
    the next block, which compiles its own program. Batches are padded to the
    largest seen so far (``batch_size`` at least, if given).
    """
    size = batch_size
    pending = None  # a batch read ahead that starts the next block

    def take_chunk(count: int) -> Chunk | None:
        nonlocal size, pending
        group, pending = ([] if pending is None else [pending]), None
        while len(group) < min(count, capacity):
            batch = next(batches, None)
            if batch is None:
                break
            if group and _layout(batch) != _layout(group[0]):
                pending = batch
                break
            group.append(batch)
        if not group:
            return None
        size = max([size or 0] + [batch_rows(b) for b in group])
        padded = [pad_batch(jax.device_get(batch), size) for batch in group]  # stacked on the host
        return stack_chunk([p for p, _ in padded], [m for _, m in padded], capacity)

    return take_chunk


def device_epoch(data: tuple, plan: tuple, start: int, count: int) -> Take:
    """``take(count) -> Chunk | None`` over batches ``start .. start+count`` of a pass drawn on the device.

    ``data`` are the arrays on the device and ``plan`` the pass's ``(idx, mask)``
    (:func:`epoch_plan`): a chunk only names its rows, the compiled step gathers them.
    """
    (idx, mask), end = plan, start + count

    def take_chunk(want: int) -> Chunk | None:
        nonlocal start
        if start >= end:
            return None
        chunk = Chunk(data, idx, mask, start, min(want, end - start))
        start += chunk.count
        return chunk

    return take_chunk


class DataSource(ABC):
    """One data set for ``fit``/``evaluate``, handed out an epoch at a time as chunks of batches.

    :func:`data_source` makes one: an :class:`ArraySource` for in-memory
    arrays, a :class:`StreamSource` for a stream of batches.
    """

    def __init__(self, model: Model, batch_size: int, steps: int | None, shuffle: bool) -> None:
        self.model, self.batch_size, self.steps, self.shuffle = model, batch_size, steps, shuffle
        self.target_shapes: list = []  # per output: its targets' shape, or None
        self.weight_shapes: list = []  # per output: its sample weights' shape, or None
        self.sample_shapes: list = []  # per input: one sample's shape (past the batch axis)

    def _shapes_from(self, data: ArrayData) -> None:
        """Set the targets', weights' and samples' shapes from the arrays, or from a stream's first batch."""
        self.sample_shapes = [tuple(np.shape(x))[1:] for x in data.x]
        self.target_shapes = target_shapes(data)
        self.weight_shapes = weight_shapes(data.sample_weight, len(self.model.output_names))

    @property
    @abstractmethod
    def steps_per_epoch(self) -> int | None:
        """Batches in an epoch, or None when unknown (a generator with no ``steps``)."""

    def unshuffled_pass(self) -> Chunk | None:
        """One pass over the data, unshuffled, as a chunk ``fit``'s steps read, the data not moved on:
        for the fusing probe, which times the steps on its first batches. None (the default) where the
        blocks of data depend on how many steps a call runs (batches fed from the host)."""
        return None

    @abstractmethod
    def epoch(self, capacity: int, seed: int, step: int = 0) -> Take:
        """``take(count) -> Chunk | None`` over the next epoch; ``capacity`` caps a host block.

        ``seed`` and ``step`` (the epoch's first train step) seed its shuffle.
        """

    @abstractmethod
    def split(self, validation_split: float, batch_size: int, steps: int | None) -> DataSource:
        """Keep the first part for training; the returned source holds the last part, unshuffled."""

    @abstractmethod
    def restart(self) -> None:
        """Start the next epoch at the beginning of the data, as Keras resets its validation iterator."""

    @abstractmethod
    def prepare(self, seed: int, step: int) -> None:
        """Do the host work of the epoch starting at ``step`` now, while the device runs the current one."""

    @abstractmethod
    def skip_epochs(self, count: int) -> None:
        """Move to where ``count`` epochs from the start would leave the data, without reading it."""

    @abstractmethod
    def end_epoch(self) -> None:
        """The data's own end-of-epoch work, after ``fit`` or a validation has read an epoch."""
