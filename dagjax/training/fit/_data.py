"""Training data from the user's arguments: checked arrays, one entry per model input and output.

``fit``, ``evaluate`` and ``predict`` take ``x``/``y`` as arrays, lists in
input/output order, dicts keyed by input/output name, or any iterable (or
sequence) of ``(x, y)`` / ``(x, y, sample_weight)`` batches. This module
checks and converts them into :class:`ArrayData`, naming the input or output
and the shapes when something does not fit; :mod:`._sources` hands them out
an epoch at a time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np

from dagjax._graph import adjust_input_rank, by_name, check_input_shape

if TYPE_CHECKING:
    from dagjax.model import Model


class ArrayData(NamedTuple):
    """In-memory data: ``x`` per model input, ``y`` per output (``None`` where absent)."""

    x: list
    y: list | None
    sample_weight: Any  # None, one array, or a list with one entry per output
    size: int


def is_stream(x: Any) -> bool:
    """True for iterables or sequences of batches (generators, data loaders, PyDatasets), not arrays."""
    if x is None or isinstance(x, (list, tuple, dict, str, bytes)) or hasattr(x, "shape"):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__") or indexable(x)


def _host_array(value: Any, dtype=None):
    """An array with 32-bit types (JAX's default), kept on device if it is already there."""
    if isinstance(value, jax.Array):
        return value if dtype is None or value.dtype == dtype else value.astype(dtype)
    array = np.asarray(value)
    _check_kind(array, dtype)
    if dtype is None:
        if array.dtype == np.float64:
            dtype = np.float32
        elif array.dtype == np.int64:
            dtype = np.int32
        elif array.dtype == np.bool_:
            dtype = np.float32
    return array if dtype is None else array.astype(dtype, copy=False)


def _check_kind(array: np.ndarray, dtype: Any) -> None:
    """Refuse what has no number to feed a model (strings, objects), and complex values a real input would
    silently lose the imaginary part of, as Keras refuses them."""
    if array.dtype.kind in "USO":
        raise TypeError(
            f"got an array of {array.dtype} values: models take numbers. Turn text into numbers first "
            "(token ids for an Embedding, say)."
        )
    if array.dtype.kind == "c" and (dtype is None or np.dtype(dtype).kind != "c"):
        raise TypeError(f"got complex values ({array.dtype}); it takes real numbers: pass .real or abs().")


def _readable(value: Any, what: str, dtype=None):
    """``_host_array(value, dtype)``, or an error naming ``what`` (a ragged list, say) instead of numpy's."""
    try:
        return _host_array(value, dtype)
    except TypeError as err:
        raise TypeError(f"{what} {err}") from None
    except ValueError as err:
        raise ValueError(
            f"{what} cannot be read as one array: {err} (A list of (x, y) batches is not a data set of "
            "arrays: pass iter(batches) or a generator.)"
        ) from None


def model_inputs(model: Model, x: Any) -> list:
    """``x`` as a list in ``model.input_names`` order, checked against each Input's shape."""
    names = model.input_names
    model.check_input_structure(x)
    flat = model.input_entries(x, "x")
    out = []
    for name, tensor, value, path in zip(names, model.inputs, flat, model.input_paths):
        if value is None:
            if tensor.node.layer.optional:
                raise NotImplementedError(
                    f"x for input '{name}' is None: an optional Input may be left out of a model call "
                    "(model(...)), but fit, evaluate and predict take an array for every input."
                )
            raise ValueError(f"x for input '{name}' of model '{model.name}' is None: it is not optional.")
        value = adjust_input_rank(_readable(value, f"x for input '{name}'", tensor.dtype), tensor.shape)
        check_input_shape(name, tensor.shape, value.shape, model.name, any_rows=True, path=path)
        out.append(value)
    return out


def model_targets(model: Model, y: Any, needed: list[bool]) -> list:
    """``y`` as a list per output (``None`` for outputs given no target); needed outputs must have one."""
    names = list(model.output_names)
    flat = by_name(
        y, names, "y", fill=None, arrays=True, needed=needed, model=model.name, structure=model.output
    )
    missing = [n for n, value, need in zip(names, flat, needed) if need and value is None]
    if missing:
        raise ValueError(f"`y` has no target for outputs {missing}, which have a loss or metric.")
    return [None if value is None else _host_array(value) for value in flat]


def _sample_weights(sample_weight: Any, names: list[str], structure: Any = None) -> Any:
    """``sample_weight`` as one array for every output, or as a list per output (``None`` where absent)."""
    if sample_weight is None:
        return None
    if not isinstance(sample_weight, (dict, list, tuple)):
        return _host_array(sample_weight, np.float32)
    per_output = by_name(sample_weight, names, "sample_weight", fill=None, arrays=True, structure=structure)
    if len(names) == 1 and not isinstance(sample_weight, dict):  # [w], as y may be [y]: the one array
        return None if per_output[0] is None else _host_array(per_output[0], np.float32)
    return [None if w is None else _host_array(w, np.float32) for w in per_output]


def class_weights_to_sample_weights(y: np.ndarray | jax.Array, class_weight: dict) -> np.ndarray:
    """Keras's rule: the class of a one-hot row is its arg-max, of a scalar label its rounded value."""
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = np.argmax(labels, axis=-1) if labels.shape[-1] != 1 else np.squeeze(labels, axis=-1)
    labels = np.round(labels).astype(np.int64)
    return np.array([class_weight.get(int(c), 1.0) for c in labels], np.float32)


def array_data(
    model: Model,
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    class_weight: dict | None = None,
    needed: list[bool] | None = None,
) -> ArrayData:
    """Checked in-memory data; ``needed`` marks outputs that must have targets (None: no targets)."""
    names = list(model.output_names)
    xs = model_inputs(model, x)
    ys = None if needed is None else model_targets(model, y, needed)
    weights = _sample_weights(sample_weight, names, model.output)
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


def take(data: ArrayData, index: slice | np.ndarray, size: int) -> ArrayData:
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


def check_same_targets(model: Model, first: list, got: list, what: str) -> None:
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


def checked_item(model: Model, item: Any, needed: list[bool] | None, class_weight: dict | None) -> ArrayData:
    """One batch from a stream, unpacked and checked as in-memory data; fit and evaluate need its ``y``."""
    x, y, sample_weight = unpack_stream_item(item)
    if needed is not None and y is None:
        raise ValueError("The data generator yields x only; fit and evaluate need (x, y) batches.")
    return array_data(model, x, y, sample_weight, class_weight, needed)


def indexable(stream: Any) -> bool:
    """A sequence of batches (a ``keras.utils.PyDataset``, say): ``len`` and ``[i]``."""
    return hasattr(stream, "__getitem__") and hasattr(stream, "__len__")
