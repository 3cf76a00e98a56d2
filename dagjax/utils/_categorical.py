"""``to_categorical``: class indices to one-hot rows, as Keras's."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """One-hot float rows for integer class indices ``x``; a trailing axis of size 1 is dropped first.

    As Keras's for host data: ``num_classes`` defaults to ``max(x) + 1`` and the
    result is a float64 numpy array of shape ``x.shape + (num_classes,)``.

    >>> to_categorical([0, 2], 3)
    array([[1., 0., 0.],
           [0., 0., 1.]])
    """
    x = np.array(x, dtype="int64")
    shape = x.shape[:-1] if x.ndim > 1 and x.shape[-1] == 1 else x.shape
    x = x.reshape(-1)
    if not num_classes:
        num_classes = int(np.max(x)) + 1
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(
            f"to_categorical got class indices from {x.min()} to {x.max()}; with num_classes={num_classes} "
            f"they must lie in [0, {num_classes - 1}]."
        )
    categorical = np.zeros((x.size, num_classes))
    categorical[np.arange(x.size), x] = 1
    return categorical.reshape(shape + (num_classes,))
