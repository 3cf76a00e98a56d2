"""Keras loss and metric objects given to dagjax: read as dagjax's class of the same name.

A user moving from Keras passes ``keras.losses.Huber(delta=0.5)`` or
``keras.metrics.AUC(curve="PR")``. Called as opaque functions they would
reduce over the batch themselves, out of reach of dagjax's per-sample
weights and padding mask; dagjax's own class with the same arguments
computes the same thing per sample.
"""

from __future__ import annotations

import inspect
from typing import Any


def from_keras(obj: Any, classes: dict[str, type]) -> Any:
    """``obj`` as ``classes[its class name]`` with its arguments; None if it is no such Keras object."""
    cls = classes.get(type(obj).__name__)
    if cls is None or not type(obj).__module__.startswith("keras.") or not hasattr(obj, "get_config"):
        return None
    # get_config leaves some arguments out (Huber's delta); Keras keeps a function's in _fn_kwargs
    config = {**obj.get_config(), **getattr(obj, "_fn_kwargs", {})}
    accepted = inspect.signature(cls).parameters
    return cls(**{k: v for k, v in config.items() if k in accepted})
