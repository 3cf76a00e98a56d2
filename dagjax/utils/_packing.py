"""Keras's ``keras.utils.pack_x_y_sample_weight`` / ``unpack_x_y_sample_weight``: a batch's tuple forms.

A Keras-form ``train_step(self, state, data)`` gets ``data`` as ``(x,)``, ``(x, y)`` or
``(x, y, sample_weight)`` and unpacks it with these, as in Keras.
"""

from __future__ import annotations

from typing import Any


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` from ``data`` (a tuple or list of 1 to 3, or ``x`` alone), None if absent."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if not 1 <= len(data) <= 3:
        raise ValueError(
            "Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, "
            f"found: {data}"
        )
    x, y, sample_weight = (*data, None, None)[:3]
    return x, y, sample_weight


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """``(x, y)`` or ``(x, y, sample_weight)`` as given; without ``y``, ``x`` itself (``(x,)`` when ``x`` is
    a tuple or list, so that it is not read as ``(x, y)``), as Keras."""
    if y is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    return (x, y) if sample_weight is None else (x, y, sample_weight)
