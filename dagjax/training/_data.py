"""Training data: user arguments to checked arrays, and arrays to batches.

``fit``, ``evaluate`` and ``predict`` take ``x``/``y`` as arrays, lists in
input/output order, dicts keyed by input/output name, or any iterable of
``(x, y)`` / ``(x, y, sample_weight)`` batches. This module turns them into
:class:`ArrayData` (checked, one entry per model input and output) or a
stream of batches, and hands them out an epoch at a time (:class:`ArraySource`,
:class:`StreamSource`) as :class:`Chunk` blocks of batches for the compiled
multi-step functions.

Every batch has a fixed size: the last partial batch is padded (by wrapping
around to the first samples) and a ``mask`` row marks the padding with 0.0,
so one compiled program serves the whole epoch.

With ``steps_per_epoch`` an epoch takes that many batches and the next one
carries on where it stopped, as Keras's epoch iterator does: a pass over the
data (one shuffle) can span several epochs, and an epoch that reaches the end
of the data stops there, with a warning, and the next starts a new pass. Each
validation starts at the beginning (``validation_steps`` takes the first batches).
"""

from __future__ import annotations

import itertools
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import numpy as np

from dagjax._graph import adjust_input_rank, check_input_shape, inputs_by_name

_DEVICE_FRACTION = 0.4  # at most this share of free accelerator memory holds a data set
_HOST_DEVICE_LIMIT = 2 << 30  # bytes a data set may take when the "device" is the CPU


class ArrayData(NamedTuple):
    """In-memory data: ``x`` per model input, ``y`` per output (``None`` where absent)."""

    x: list
    y: list | None
    sample_weight: Any  # None, one array, or a list with one entry per output
    size: int


class Chunk(NamedTuple):
    """Rows ``start .. start+count`` of ``idx``/``mask`` index batches out of ``data`` (all on device).

    ``mask`` is None when no batch of the epoch holds padding.
    """

    data: tuple
    idx: jax.Array
    mask: jax.Array | None
    start: int
    count: int


def is_stream(x: Any) -> bool:
    """True for iterables or sequences of batches (generators, data loaders, PyDatasets), not arrays."""
    if x is None or isinstance(x, (list, tuple, dict, str, bytes)) or hasattr(x, "shape"):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__") or _indexable(x)


def stream_pass(stream: Any, order: Any = None) -> Iterator:
    """One pass over a stream: a sequence (``len``, ``[i]``) by index, in ``order`` if given."""
    if _indexable(stream):
        return (stream[int(i)] for i in (range(len(stream)) if order is None else order))
    return iter(stream)


def _host_array(value: Any, dtype=None):
    """An array with 32-bit types (JAX's default), kept on device if it is already there."""
    if isinstance(value, jax.Array):
        return value if dtype is None or value.dtype == dtype else value.astype(dtype)
    array = np.asarray(value)
    if dtype is None:
        if array.dtype == np.float64:
            dtype = np.float32
        elif array.dtype == np.int64:
            dtype = np.int32
        elif array.dtype == np.bool_:
            dtype = np.float32
    return array if dtype is None else array.astype(dtype, copy=False)


def _readable(value: Any, what: str, dtype=None):
    """``_host_array(value, dtype)``, or an error naming ``what`` (a ragged list, say) instead of numpy's."""
    try:
        return _host_array(value, dtype)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{what} cannot be read as one array: {err} (A list of (x, y) batches is not a data set of "
            "arrays: pass iter(batches) or a generator.)"
        ) from None


def model_inputs(model, x: Any) -> list:
    """``x`` as a list in ``model.input_names`` order, checked against each Input's shape."""
    names = model.input_names
    flat = inputs_by_name(x, names, model.name, arg="x")
    out = []
    for name, tensor, value in zip(names, model.inputs, flat):
        value = adjust_input_rank(_readable(value, f"x for input '{name}'", tensor.dtype), tensor.shape)
        check_input_shape(name, tensor.shape, value.shape, model.name, any_rows=True)
        out.append(value)
    return out


def model_targets(model, y: Any, needed: list[bool]) -> list:
    """``y`` as a list per output (``None`` for outputs given no target); needed outputs must have one."""
    names = list(model.output_names)
    wanted = [n for n, need in zip(names, needed) if need]
    if isinstance(y, dict):
        unknown = [k for k in y if k not in names]
        if unknown:
            raise ValueError(f"y names unknown outputs {unknown}; the model's outputs are {names}.")
        flat = [y.get(n) for n in names]
    elif isinstance(y, (list, tuple)) and len(names) > 1:
        if len(y) == len(names):
            flat = list(y)
        elif len(y) == len(wanted):
            given = iter(y)
            flat = [next(given) if need else None for need in needed]
        else:
            raise ValueError(
                f"y is a list of {len(y)} arrays; the model has {len(names)} outputs {names}"
                + (f" ({len(wanted)} with a loss or metric: {wanted})" if len(wanted) != len(names) else "")
                + ". Pass one array per output, or a dict by output name."
            )
    elif len(names) == 1:
        flat = [y[0] if isinstance(y, (list, tuple)) and len(y) == 1 and hasattr(y[0], "shape") else y]
    elif len(wanted) == 1:
        flat = [y if need else None for need in needed]
    else:
        raise ValueError(
            f"The model has {len(names)} outputs {names}; pass y as a list or a dict by output name."
        )
    missing = [n for n, value, need in zip(names, flat, needed) if need and value is None]
    if missing:
        raise ValueError(f"y has no target for outputs {missing}, which have a loss or metric.")
    return [None if value is None else _host_array(value) for value in flat]


def _sample_weights(sample_weight: Any, names: list[str]) -> Any:
    if sample_weight is None:
        return None
    if isinstance(sample_weight, dict):
        unknown = [k for k in sample_weight if k not in names]
        if unknown:
            raise ValueError(
                f"sample_weight names unknown outputs {unknown}; the model's outputs are {names}."
            )
        return [
            None if sample_weight.get(n) is None else _host_array(sample_weight[n], np.float32) for n in names
        ]
    if isinstance(sample_weight, (list, tuple)) and len(names) == 1:
        if len(sample_weight) == 1 and hasattr(sample_weight[0], "shape"):  # [w], as y may be [y]
            sample_weight = sample_weight[0]
    elif isinstance(sample_weight, (list, tuple)):
        if len(sample_weight) != len(names):
            raise ValueError(
                f"sample_weight is a list of {len(sample_weight)}; the model's outputs are {names}."
            )
        return [None if w is None else _host_array(w, np.float32) for w in sample_weight]
    return _host_array(sample_weight, np.float32)


def class_weights_to_sample_weights(y, class_weight: dict) -> np.ndarray:
    """Keras's rule: the class of a one-hot row is its arg-max, of a scalar label its rounded value."""
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else np.squeeze(labels, axis=-1)
    labels = np.round(labels).astype(np.int64)
    return np.array([class_weight.get(int(c), 1.0) for c in labels], np.float32)


def array_data(model, x, y=None, sample_weight=None, class_weight=None, needed=None) -> ArrayData:
    """Checked in-memory data; ``needed`` marks outputs that must have targets (None: no targets)."""
    names = list(model.output_names)
    xs = model_inputs(model, x)
    ys = None if needed is None else model_targets(model, y, needed)
    weights = _sample_weights(sample_weight, names)
    if class_weight is not None:
        if weights is not None:
            raise ValueError("You cannot pass both `class_weight` and `sample_weight`.")
        given = [i for i, value in enumerate(ys or []) if value is not None]
        if len(given) != 1:
            raise ValueError("`class_weight` is only supported for models with a single output.")
        weights = class_weights_to_sample_weights(ys[given[0]], class_weight)
    arrays = [(f"x '{n}'", v) for n, v in zip(model.input_names, xs)]
    arrays += [(f"y '{n}'", v) for n, v in zip(names, ys or []) if v is not None]
    if isinstance(weights, list):
        arrays += [(f"sample_weight '{n}'", w) for n, w in zip(names, weights) if w is not None]
    elif weights is not None:
        arrays.append(("sample_weight", weights))
    for label, value in arrays:
        if value.ndim == 0:
            raise ValueError(f"{label} is a scalar; it needs one entry per sample (the first axis).")
    sizes = [(label, value.shape[0]) for label, value in arrays]
    if len({s for _, s in sizes}) > 1:
        raise ValueError(
            "x and y have different numbers of samples: " + ", ".join(f"{k} has {s}" for k, s in sizes) + "."
        )
    size = sizes[0][1]
    if size == 0:
        raise ValueError("The data set is empty: x has 0 samples.")
    return ArrayData(xs, ys, weights, size)


def split(data: ArrayData, validation_split: float) -> tuple[ArrayData, ArrayData]:
    """The last ``validation_split`` share of the samples becomes validation data, as in Keras."""
    at = int(math.floor(data.size * (1.0 - validation_split)))
    if at == 0 or at == data.size:
        raise ValueError(
            f"The data has {data.size} samples, too few to split off validation_split={validation_split}."
        )
    return take(data, slice(0, at), at), take(data, slice(at, data.size), data.size - at)


def take(data: ArrayData, index, size: int) -> ArrayData:
    """The samples at ``index`` (a slice or an index array)."""
    pick = lambda v: None if v is None else v[index]
    weights = data.sample_weight
    weights = [pick(w) for w in weights] if isinstance(weights, list) else pick(weights)
    return ArrayData(
        [pick(v) for v in data.x], None if data.y is None else [pick(v) for v in data.y], weights, size
    )


def target_shapes(data: ArrayData) -> list:
    """Per output, the shape of its targets, or None."""
    return [None if v is None else v.shape for v in data.y or []]


def weight_shapes(sample_weight: Any, outputs: int) -> list:
    """Per output, the shape of its sample weights (one array serves every output), or None."""
    if isinstance(sample_weight, list):
        return [None if w is None else w.shape for w in sample_weight]
    return [None if sample_weight is None else sample_weight.shape] * outputs


def leaves(data: ArrayData) -> tuple:
    """The arrays a compiled step reads: ``(x, y, sample_weight)``."""
    return (data.x, data.y, data.sample_weight)


def nbytes(data: ArrayData) -> int:
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


def pass_rows(size: int, batch_size: int) -> int:
    """Batches in one pass over ``size`` samples (the last one maybe partial)."""
    return math.ceil(size / batch_size)


def epoch_plan(seed: Any, size: int, batch_size: int, shuffle: bool) -> tuple:
    """``(idx, mask)`` for one pass, of shape ``(rows, batch_size)``: batch ``r`` is samples ``idx[r]``.

    The last batch's missing rows wrap around to the first samples and are
    padding (mask 0.0); with no padding the mask is None. The permutation
    is drawn on the host (``seed``: any numpy seed); the data itself stays
    on the device.
    """
    order = np.random.default_rng(seed).permutation(size) if shuffle else np.arange(size)
    rows = pass_rows(size, batch_size)
    positions = np.arange(rows * batch_size)
    idx = order[positions % size].astype(np.int32).reshape(rows, batch_size)
    if positions.size == size:
        return jax.device_put(idx), None
    real = (positions < size).astype(np.float32)
    return jax.device_put(idx), jax.device_put(real.reshape(rows, batch_size))


def warn_short_epoch(steps: int, got: int) -> None:
    """Keras's warning when an epoch with ``steps`` batches reaches the end of its data first."""
    warnings.warn(
        f"The data ran out after {got} of the {steps} steps asked for (steps_per_epoch, validation_steps "
        "or steps): the run stops there, and a next epoch starts a new pass over the data.",
        UserWarning,
        stacklevel=2,
    )


def pad_batch(batch: tuple, batch_size: int) -> tuple:
    """A host batch ``(x, y, sample_weight)`` padded to ``batch_size`` rows, plus its mask."""
    n = jax.tree_util.tree_leaves(batch[0])[0].shape[0]
    if n > batch_size:
        raise ValueError(f"A batch of {n} samples is larger than the batch size {batch_size}.")
    wrap = np.arange(batch_size) % n
    padded = jax.tree_util.tree_map(lambda v: np.asarray(v)[wrap], batch)
    mask = (np.arange(batch_size) < n).astype(np.float32)
    return padded, mask


def stack_chunk(batches: list[tuple], masks: list[np.ndarray], capacity: int) -> Chunk:
    """Host batches concatenated into one device block of ``capacity`` batches (empty slots masked)."""
    count = len(batches)
    filler = batches[0]
    batches = batches + [filler] * (capacity - count)
    masks = masks + [np.zeros_like(masks[0])] * (capacity - count)
    data = jax.device_put(jax.tree_util.tree_map(lambda *vs: np.concatenate(vs), *batches))
    batch_size = masks[0].shape[0]
    idx = jax.device_put(np.arange(capacity * batch_size, dtype=np.int32).reshape(capacity, batch_size))
    return Chunk(data, idx, jax.device_put(np.stack(masks)), 0, count)


def unpack_stream_item(item: Any) -> tuple:
    """``(x, y, sample_weight)`` from a batch yielded by a generator (Keras's tuple rule)."""
    if isinstance(item, tuple):
        if not 1 <= len(item) <= 3:
            raise ValueError(
                "A data generator must yield (x,), (x, y) or (x, y, sample_weight); "
                f"got a tuple of {len(item)}."
            )
        return (*item, None, None)[:3]
    return item, None, None


def check_same_targets(model, first: list, got: list, what: str) -> None:
    """Raise, naming the output, when targets ``got`` differ past the samples axis from ``first``.

    One compiled step serves targets of one shape; only the axes where the
    model's output has no fixed size (a sequence length) may vary.
    """
    for name, output, a, b in zip(model.output_names, model.outputs, first, got):
        if a is None or b is None:
            continue
        ta, tb = _trim_unit(a), _trim_unit(b)
        fixed = [i for i in range(1, len(ta)) if i >= len(output.shape) or output.shape[i] is not None]
        if len(ta) != len(tb) or any(ta[i] != tb[i] for i in fixed):
            raise ValueError(
                f"{what}: the target for output '{name}' has shape {tuple(b)}, where the training "
                f"targets have {tuple(a)}; they must agree past the samples axis."
            )


def _trim_unit(shape: tuple) -> tuple:
    """``shape`` without a trailing axis of size 1, which losses add or drop as needed."""
    return tuple(shape[:-1]) if len(shape) > 1 and shape[-1] == 1 else tuple(shape)


def _checked_item(model, item: Any, needed, class_weight) -> ArrayData:
    x, y, sample_weight = unpack_stream_item(item)
    if needed is not None and y is None:
        raise ValueError("The data generator yields x only; fit and evaluate need (x, y) batches.")
    return array_data(model, x, y, sample_weight, class_weight, needed)


def array_batches(data: ArrayData, batch_size: int, order: np.ndarray, start: int, count: int) -> Iterator:
    """Host batches ``(x, y, sample_weight)``: batches ``start .. start+count`` of the pass ``order``."""
    for row in range(start, start + count):
        positions = order[row * batch_size : (row + 1) * batch_size]
        yield leaves(take(data, positions, positions.size))


def _layout(batch: tuple) -> tuple:
    """What batches stacked into one block must share: tree structure, dtypes, shapes past the batch dim."""
    values, structure = jax.tree_util.tree_flatten(batch)
    return structure, tuple((np.dtype(v.dtype), tuple(v.shape[1:])) for v in values)


def _host_epoch(batches: Iterator[tuple], batch_size: int | None, capacity: int):
    """``take(count) -> Chunk | None`` over host batches, stacked up to ``capacity`` to a block.

    A block holds batches of one layout: a batch whose shapes past the batch
    dim (a sequence length, say) or structure differ from the block's starts
    the next block, which compiles its own program.
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
        size = max([size or 0] + [jax.tree_util.tree_leaves(b[0])[0].shape[0] for b in group])
        padded = [pad_batch(batch, size) for batch in group]
        return stack_chunk([p for p, _ in padded], [m for _, m in padded], capacity)

    return take_chunk


def _device_epoch(data: tuple, plan: tuple, start: int, count: int):
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


_END = object()


class Replayed:
    """A one-shot iterator of batches made re-iterable: every pass replays what it yielded so far.

    ``fit`` wraps a generator given as ``validation_data`` in one, so each
    validation sees the same batches instead of an exhausted generator. The
    batches stay in host memory for the length of the ``fit``.
    """

    def __init__(self, iterator: Iterator):
        self._source, self._seen = iterator, []

    def __iter__(self) -> Iterator:
        for i in itertools.count():
            if i == len(self._seen):
                item = next(self._source, _END)
                if item is _END:
                    return
                self._seen.append(item)
            yield self._seen[i]



def _indexable(stream: Any) -> bool:
    """A sequence of batches (a ``keras.utils.PyDataset``, say): ``len`` and ``[i]``."""
    return hasattr(stream, "__getitem__") and hasattr(stream, "__len__")


def _dataset_hook(stream: Any, name: str) -> None:
    hook = getattr(stream, name, None)
    if callable(hook):
        hook()


class DataSource(ABC):
    """One data set for ``fit``/``evaluate``, handed out an epoch at a time as chunks of batches.

    :func:`data_source` makes one: an :class:`ArraySource` for in-memory
    arrays, a :class:`StreamSource` for a stream of batches.
    """

    def __init__(self, model, batch_size: int, steps: int | None, shuffle: bool):
        self.model, self.batch_size, self.steps, self.shuffle = model, batch_size, steps, shuffle
        self.target_shapes: list = []  # per output: its targets' shape, or None
        self.weight_shapes: list = []  # per output: its sample weights' shape, or None

    def _shapes_from(self, data: ArrayData) -> None:
        """Set ``target_shapes`` and ``weight_shapes`` from the arrays, or from a stream's first batch."""
        self.target_shapes = target_shapes(data)
        self.weight_shapes = weight_shapes(data.sample_weight, len(self.model.output_names))

    @property
    @abstractmethod
    def steps_per_epoch(self) -> int | None:
        """Batches in an epoch, or None when unknown (a generator with no ``steps``)."""

    @abstractmethod
    def epoch(self, capacity: int, seed: int, step: int = 0):
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


def data_source(model, x, y, sample_weight, class_weight, batch_size, steps, needed, shuffle) -> DataSource:
    """From ``fit``/``evaluate`` arguments: arrays (lists, dicts) or a stream of batches."""
    if is_stream(x):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "When x is a data generator, it yields the targets too; do not pass y or sample_weight."
            )
        return StreamSource(model, x, batch_size, steps, shuffle, needed, class_weight)
    arrays = array_data(model, x, y, sample_weight, class_weight, needed)
    return ArraySource(model, arrays, batch_size, steps, shuffle, class_weight)


class ArraySource(DataSource):
    """In-memory arrays, read in passes of ``pass_rows`` batches with one shuffle each.

    Arrays that fit go to the device once and are shuffled and gathered
    there; bigger ones come as host batches. An epoch with no padding at all
    has no mask (``None``), and its step program none of the masking arithmetic.
    """

    def __init__(
        self, model, arrays: ArrayData, batch_size: int, steps: int | None, shuffle: bool, class_weight=None
    ):
        super().__init__(model, batch_size, steps, shuffle)
        self._class_weighted = class_weight is not None  # the sample weights come from class_weight
        self._use(arrays)

    def _use(self, arrays: ArrayData) -> None:
        """Hold ``arrays``: no pass begun yet, nothing placed on the device yet."""
        self.arrays = arrays
        self._shapes_from(arrays)
        self._device: tuple | None = None  # the arrays on the device, once placed
        self._pass = None  # the current pass's shuffle: ``_plan``'s result
        self._row = 0  # the batch of the current pass the next epoch starts at
        self._planned: tuple | None = None  # (seed, plan) made ahead by ``prepare``

    def _on_device(self) -> tuple | None:
        """The arrays on the device (placed on first use), or None if they are too big for it."""
        if self._device is None and fits_on_device(nbytes(self.arrays)):
            self._device = jax.device_put(leaves(self.arrays))
        return self._device

    def split(self, validation_split: float, batch_size: int, steps: int | None) -> ArraySource:
        """Keep the first part for training; the returned source holds the last part, unshuffled."""
        train, val = split(self.arrays, validation_split)
        if self._class_weighted:  # its weights are for training: Keras validates unweighted
            val = val._replace(sample_weight=None)
        self._use(train)
        return ArraySource(self.model, val, batch_size, steps, False)

    @property
    def steps_per_epoch(self) -> int:
        return pass_rows(self.arrays.size, self.batch_size) if self.steps is None else self.steps

    def epoch(self, capacity: int, seed: int, step: int = 0):
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
        if count < (self.steps or 0):
            warn_short_epoch(self.steps, count)
        self._row = (start + count) % rows
        if device is None:
            batches = array_batches(self.arrays, self.batch_size, self._pass, start, count)
            return _host_epoch(batches, self.batch_size, capacity)
        return _device_epoch(device, self._pass, start, count)

    def _pass_plan(self, seed: Any):
        """A new pass's shuffle for ``seed``: the one ``prepare`` drew for that seed, else drawn now."""
        planned, self._planned = self._planned, None
        return planned[1] if planned is not None and planned[0] == seed else self._plan(seed)

    def _plan(self, seed: Any):
        """One pass's shuffle: ``(idx, mask)`` on the device, or the sample order for host batches."""
        size, shuffle = self.arrays.size, bool(self.shuffle)
        if self._on_device() is None:
            return np.random.default_rng(seed).permutation(size) if shuffle else np.arange(size)
        return epoch_plan(seed, size, self.batch_size, shuffle)

    def _epoch_rows(self, rows: int) -> int:
        """Batches the next epoch takes: ``steps``, or what is left of the pass if that is less."""
        left = rows - self._row
        return left if self.steps is None else min(self.steps, left)

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
        self._row = 0

    def end_epoch(self) -> None:
        pass  # arrays have no epoch hooks


class StreamSource(DataSource):
    """A stream of batches (a generator, a data loader, a ``keras.utils.PyDataset``), read as host batches.

    A generator continues across epochs; a re-iterable stream starts over
    when a pass ends. A sequence of batches (``len`` and ``[i]``: a
    ``keras.utils.PyDataset``) is read in a new shuffled order each pass when
    ``shuffle``, and its ``on_epoch_begin`` / ``on_epoch_end`` are called, as
    Keras does.
    """

    def __init__(
        self, model, stream: Any, batch_size: int, steps: int | None, shuffle: bool, needed, class_weight=None
    ):
        super().__init__(model, batch_size, steps, shuffle)
        self.stream, self.needed, self.class_weight = stream, needed, class_weight
        self._iterator = None  # the stream's current pass (None: the next epoch starts one)
        self._pending: ArrayData | None = None  # a first batch read ahead (for the shapes), not yet yielded
        if _indexable(stream):  # read its first batch, without starting a pass (it may be shuffled)
            first = _checked_item(model, stream[0], needed, class_weight) if len(stream) else None
        else:  # the first batch read stays the pass's first
            self._iterator = iter(stream)
            item = next(self._iterator, None)
            first = None if item is None else _checked_item(model, item, needed, class_weight)
            self._pending = first
        if first is None:
            raise ValueError("The data set is empty: the generator yields no batches.")
        self._shapes_from(first)

    def split(self, validation_split: float, batch_size: int, steps: int | None) -> DataSource:
        raise ValueError("validation_split needs in-memory arrays; pass validation_data with a generator.")

    @property
    def steps_per_epoch(self) -> int | None:
        if self.steps is not None:
            return self.steps
        try:
            return len(self.stream)
        except TypeError:
            return None

    def epoch(self, capacity: int, seed: int, step: int = 0):
        """``take(count) -> Chunk | None`` over the next ``steps`` batches; ``capacity`` caps a block.

        ``(seed, step)`` seeds the shuffle of a pass that begins in this epoch.
        """
        _dataset_hook(self.stream, "on_epoch_begin")
        return _host_epoch(itertools.islice(self._batches((seed, step)), self.steps), None, capacity)

    def restart(self) -> None:
        if self._pending is None:  # a pending first batch is where the next pass starts anyway
            self._iterator = None

    def end_epoch(self) -> None:
        """Call the stream's ``on_epoch_end`` if it has one (a ``keras.utils.PyDataset``), as Keras does."""
        _dataset_hook(self.stream, "on_epoch_end")

    def prepare(self, seed: int, step: int) -> None:
        pass  # a pass's shuffle is drawn as it begins

    def skip_epochs(self, count: int) -> None:
        pass  # streams cannot be skipped without being read: a resumed run starts them afresh

    def _new_pass(self, seed: Any) -> Iterator:
        """A pass over the stream; an indexable one (``len``, ``[i]``) in shuffled order if asked."""
        stream = self.stream
        if self.shuffle and _indexable(stream):
            return stream_pass(stream, np.random.default_rng(seed).permutation(len(stream)))
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
                batch = _checked_item(self.model, item, self.needed, self.class_weight)
                shapes = target_shapes(batch)
                check_same_targets(self.model, self.target_shapes, shapes, "A batch of the data generator")
                yield leaves(batch)
            self._iterator = None
            if got or fresh:
                break
            fresh = True
        if self.steps is not None and 0 < got < self.steps:
            warn_short_epoch(self.steps, got)
