"""Keras loss, metric and optimizer objects given to dagjax: read as dagjax's of the same name.

A user moving from Keras passes ``keras.losses.Huber(delta=0.5)`` or
``keras.metrics.AUC(curve="PR")``. Called as opaque functions they would
reduce over the batch themselves, out of reach of dagjax's per-sample
weights and padding mask; dagjax's own class with the same arguments
computes the same thing per sample.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def from_keras(obj: Any, classes: dict[str, Callable], read: Callable[[dict], dict] | None = None) -> Any:
    """``obj`` as ``classes[its class name]`` with its arguments; None if it is not a Keras object.

    A Keras object dagjax has no class for, or one set with an argument the
    dagjax class lacks, is refused rather than approximated. ``read``, if
    given, turns Keras's config values into ones dagjax takes.
    """
    if not type(obj).__module__.startswith("keras.") or not hasattr(obj, "get_config"):
        return None
    kind = f"Keras's {type(obj).__name__}"
    cls = classes.get(type(obj).__name__)
    if cls is None:
        raise TypeError(
            f"dagjax has no counterpart of {kind}; pass a dagjax one or a function "
            "(y_true, y_pred) -> per-sample values."
        )
    # get_config leaves some arguments out (Huber's delta); Keras keeps a function's in _fn_kwargs
    config = {**obj.get_config(), **getattr(obj, "_fn_kwargs", {})}
    config = read(config) if read is not None else config
    accepted = inspect.signature(cls).parameters
    defaults = {k: p.default for k, p in inspect.signature(type(obj)).parameters.items()}
    lacking = [k for k, v in config.items() if k not in accepted and k not in _IGNORED and k in defaults
               and _differs(v, defaults[k])]
    if lacking:
        raise NotImplementedError(f"{kind}: dagjax's {cls.__name__} has no {', '.join(lacking)}.")
    return cls(**{k: v for k, v in config.items() if k in accepted})


_IGNORED = ("dtype", "name")  # a compute dtype (dagjax computes these in float32), a label


def _differs(value: Any, default: Any) -> bool:
    try:
        return bool(value != default)
    except (TypeError, ValueError):  # values that do not compare to a plain default (arrays)
        return True


def from_object(
    identifier: Any, base: type, classes: dict[str, Callable], wrapper: Callable, example: str
) -> Any:
    """A loss or metric that is not a name: a ``base`` subclass (made with its defaults), a Keras object
    of a class in ``classes``, or a function (wrapped with ``wrapper``); anything else is refused."""
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier()
    keras_object = from_keras(identifier, classes)
    if keras_object is not None:
        return keras_object
    if callable(identifier):
        return wrapper(identifier)
    what = base.__name__.lower()
    raise TypeError(
        f"Could not interpret {what} {identifier!r}: expected a name such as '{example}', a dagjax "
        f"{base.__name__}, or a function (y_true, y_pred) -> per-sample values."
    )
