"""``compile``'s losses and metrics as JSON data for a model file, and back.

The arguments keep their shape (one value, a list per output, a dict by
output name), with each leaf written as data a file can hold:

- a Keras name (``"mse"``, ``"accuracy"``) or a number: as is;
- a function: ``{"function": name}`` for dagjax's own, ``{"custom_function":
  name}`` for any other, found in ``custom_objects`` when loading (a lambda
  has no name, so it cannot be saved);
- a ``Loss`` or ``Metric``: ``{"object": {"class_name", "config"}}`` for
  dagjax's own classes, ``{"custom_object": ...}`` for others (from
  ``custom_objects`` when loading); the config is JSON data, with functions
  written as above (a Keras object is saved as the dagjax one it stands for).

Nothing here runs code from a file: names are looked up in dagjax's tables
and in what the caller passes.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from dagjax.training.objectives import _loss_functions, _losses, _metrics
from dagjax.training.objectives._losses import Loss, LossFunctionWrapper
from dagjax.training.objectives._metric_base import Mean, MeanMetricWrapper, Metric


def _functions_of(*modules: Any) -> dict[str, Callable]:
    """The public functions defined in ``modules``, by name."""
    return {
        name: fn
        for module in modules
        for name, fn in vars(module).items()
        if inspect.isfunction(fn) and fn.__module__ == module.__name__ and not name.startswith("_")
    }


# kind -> (base class, get, dagjax's classes by name, dagjax's functions by name)
KINDS: dict[str, tuple[type, Callable, dict, dict]] = {
    "loss": (
        Loss,
        _losses.get,
        {**_losses._BY_CLASS_NAME, "LossFunctionWrapper": LossFunctionWrapper},
        _functions_of(_loss_functions),
    ),
    "metric": (
        Metric,
        _metrics.get,
        {**_metrics._BY_NAME, "Mean": Mean, "MeanMetricWrapper": MeanMetricWrapper},
        _functions_of(_loss_functions, _metrics),
    ),
}


class NotSerializableError(TypeError):
    """What ``compile`` was given that a file cannot hold, in words."""


def serialize(value: Any, kind: str | None) -> Any:
    """``value`` (a ``compile`` argument: losses, metrics, loss weights) as JSON data.

    ``kind`` ("loss", "metric", or None for plain numbers) says what the leaves are.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [serialize(item, kind) for item in value]
    if isinstance(value, dict):
        return {"by_output": {str(name): serialize(item, kind) for name, item in value.items()}}
    if kind is None:
        raise NotSerializableError(f"{value!r} is not a number")
    return _serialize_object(value, kind)


def deserialize(data: Any, kind: str | None, custom_objects: dict | None = None) -> Any:
    """The ``compile`` argument ``data`` describes (see :func:`serialize`)."""
    if isinstance(data, list):
        return [deserialize(item, kind, custom_objects) for item in data]
    if not isinstance(data, dict):
        return data
    tag, body = next(iter(data.items())) if len(data) == 1 else (None, None)
    if tag == "by_output" and isinstance(body, dict):
        return {name: deserialize(item, kind, custom_objects) for name, item in body.items()}
    if kind is not None and tag in ("object", "custom_object") and isinstance(body, dict):
        return _object(body, kind, tag == "custom_object", custom_objects)
    if kind is not None and tag in ("function", "custom_function"):
        return _function(body, kind, tag == "custom_function", custom_objects)
    raise ValueError(f"Unreadable {kind or 'loss weight'} entry {json.dumps(data)[:200]}.")


def _serialize_object(value: Any, kind: str) -> dict:
    base, get, classes, _ = KINDS[kind]
    if isinstance(value, type) and issubclass(value, base):
        value = value()
    elif callable(value) and not isinstance(value, base) and not hasattr(value, "get_config"):
        return _serialize_function(value, kind)
    obj = get(value)  # a Keras object becomes the dagjax one it stands for
    config = obj.get_config()
    if type(obj) is LossFunctionWrapper:  # its function is an argument, not fixed by the class
        config = {"fn": obj.fn, **config}
    config = {key: _config_value(item, kind) for key, item in config.items()}
    try:
        json.dumps(config)
    except (TypeError, ValueError) as err:
        raise NotSerializableError(f"the {kind} {obj!r} has a config that is not JSON data ({err})") from err
    tag = "object" if classes.get(type(obj).__name__) is type(obj) else "custom_object"
    return {tag: {"class_name": type(obj).__name__, "config": config}}


def _config_value(value: Any, kind: str) -> Any:
    """A config value as JSON data: a function as in :func:`_serialize_function`, an array as a list."""
    if callable(value):
        return _serialize_function(value, kind)
    return value.tolist() if hasattr(value, "tolist") else value


def _serialize_function(fn: Callable, kind: str) -> dict:
    name = getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise NotSerializableError(
            f"the {kind} {fn!r} is a lambda: a file can name a function but not hold one; "
            "use a def (and pass it in custom_objects when loading)"
        )
    return {"function" if KINDS[kind][3].get(name) is fn else "custom_function": name}


def _function(name: Any, kind: str, custom: bool, custom_objects: dict | None) -> Callable:
    """dagjax's function of this name, or (``custom``) the one ``custom_objects`` gives."""
    found = (custom_objects or {}).get(name) if custom else KINDS[kind][3].get(name)
    if not callable(found):
        where = f"pass custom_objects={{{name!r}: <the function>}} to load_model" if custom else "none such"
        raise ValueError(f"Unknown {kind} function {name!r}: {where}.")
    return found


def _object(spec: dict, kind: str, custom: bool, custom_objects: dict | None) -> Any:
    """The loss or metric a ``{"class_name", "config"}`` spec names (``custom``: from ``custom_objects``)."""
    base, _, classes, _ = KINDS[kind]
    name, config = spec.get("class_name"), spec.get("config", {})
    cls = (custom_objects or {}).get(name) if custom else classes.get(name)
    if not (isinstance(cls, type) and issubclass(cls, base)) or not isinstance(config, dict):
        raise ValueError(
            f"Unknown {kind} class {name!r}: pass custom_objects={{{name!r}: <the class>}} to load_model."
        )
    return cls(**{key: _argument(value, kind, custom_objects) for key, value in config.items()})


def _argument(value: Any, kind: str, custom_objects: dict | None) -> Any:
    """A config value from a file: a function where it names one, else the value as is."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, name),) = value.items()
        if tag in ("function", "custom_function"):
            return _function(name, kind, tag == "custom_function", custom_objects)
    return value
