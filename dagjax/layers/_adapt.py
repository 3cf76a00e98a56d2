"""What ``adapt(data)`` reads: the batches of a preprocessing layer's data, as numpy, on the host.

``adapt`` computes statistics (a mean, quantiles, a vocabulary) before
training, once, outside any compiled program, as Keras's ``adapt`` does.
It takes what Keras's takes: one array, or an iterable of batches (a list,
a generator, a ``PyDataset``-like sequence) whose elements are arrays or
``(x, ...)`` tuples whose first entry is the data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def _batch_array(batch: Any, layer: str) -> np.ndarray:
    if isinstance(batch, (tuple, list)) and batch and hasattr(batch[0], "shape"):
        batch = batch[0]  # (x, y) or (x, y, sample_weight): Keras adapts on x
    if not hasattr(batch, "shape"):
        raise TypeError(
            f"{layer}.adapt() expects arrays, or an iterable of array batches; got an element of type "
            f"{type(batch).__name__}. Pass e.g. layer.adapt(x_train) or layer.adapt([batch1, batch2])."
        )
    return np.asarray(batch)


def adapt_batches(data: Any, layer: str) -> Iterator[np.ndarray]:
    """The batches of ``data`` as numpy arrays (one batch for a single array); an empty input is an error."""
    if hasattr(data, "shape"):
        yield np.asarray(data)
        return
    if not hasattr(data, "__iter__") and not hasattr(data, "__getitem__"):
        raise TypeError(
            f"{layer}.adapt() expects a numpy/jax array or an iterable of batches, got {type(data).__name__}."
        )
    empty = True
    for batch in _elements(data):
        empty = False
        yield _batch_array(batch, layer)
    if empty:
        raise ValueError(f"{layer}.adapt() received no batches: pass a non-empty array or iterable.")


def _elements(data: Any) -> Iterator[Any]:
    """Iterate ``data``; a sequence with ``__len__``/``__getitem__`` (a PyDataset) by index."""
    if hasattr(data, "__iter__"):
        yield from data
    else:
        for i in range(len(data)):
            yield data[i]
