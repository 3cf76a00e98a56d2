"""Any layer to a JSON-able ``{"class_name", "config"}`` dict and back, as model files record it.

The dict holds the name the registry gives the layer's class and the layer's
``get_config()``; rebuilding resolves the name and calls the class's
``from_config``. A layer made of layers (a wrapper, a model) writes and reads
its parts with these same two functions inside its own ``get_config`` /
``from_config``, so nothing here knows any such class. An error names the
innermost layer it comes from; the layers around that one pass it on
unchanged, so a message does not repeat a label per level of nesting.
"""

from __future__ import annotations

import json

from dagjax.layers._base import Layer
from dagjax.layers._core import Lambda
from dagjax.layers._registry import class_name, custom_object_scope, in_scope, resolve, substitute

_NAMES_ITS_LAYER = "_dagjax_names_its_layer"  # set on an error that already says which layer it is about


def _named(err: Exception) -> Exception:
    """``err``, marked as naming its layer, so the layers around that one pass it on unchanged."""
    setattr(err, _NAMES_ITS_LAYER, True)
    return err


def _names_its_layer(err: Exception) -> bool:
    return getattr(err, _NAMES_ITS_LAYER, False)


def layer_to_config(layer: Layer) -> dict:
    """``{"class_name", "config"}`` for a layer or a whole model, its config checked to be JSON data.

    A file holds data, never objects: a config value that is not JSON is an
    error naming the layer, raised at save time rather than written as a repr.
    """
    try:
        config = layer.get_config()
    except TypeError as err:  # an argument that cannot be recorded (a nameless function, say)
        if _names_its_layer(err):
            raise
        label = f"Layer '{layer.name}' ({type(layer).__name__}) cannot be saved"
        raise _named(TypeError(f"{label}: {err}")) from err
    for key, value in config.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as err:
            raise _named(TypeError(
                f"Layer '{layer.name}' ({type(layer).__name__}) cannot be saved: its get_config() "
                f"holds {key}={value!r}, which is not JSON data ({err}). Make get_config() return "
                "names and numbers, and rebuild objects from them in __init__ or from_config."
            )) from err
    return {"class_name": class_name(layer), "config": config}


def layer_from_config(spec: dict, custom_objects: dict | None = None) -> Layer:
    """The layer (or model) a ``{"class_name", "config"}`` dict describes, with fresh weights.

    ``custom_objects`` add to those of an enclosing ``custom_object_scope``
    and stay in scope while the class's ``from_config`` runs, so a wrapper or
    a model finds them when it rebuilds its own layers through this function.
    """
    custom_objects = in_scope(custom_objects)
    try:
        with custom_object_scope(custom_objects):
            return _rebuilt(spec, custom_objects)
    except Exception as err:
        _named(err)  # whatever leaves here concerns this layer or one inside it, and says which
        raise


def _rebuilt(spec: dict, custom_objects: dict) -> Layer:
    if not isinstance(spec, dict) or "class_name" not in spec or not isinstance(spec.get("config"), dict):
        raise ValueError(f"A layer config must be a dict with 'class_name' and 'config', got {spec!r:.200}.")
    name = spec["class_name"]
    layer_name = spec["config"].get("name", "?")
    klass = resolve(name, custom_objects, layer_name)
    config = substitute(spec["config"], custom_objects)
    if issubclass(klass, Lambda) and isinstance(config.get("function"), str):
        fn = config["function"]
        anonymous = " (an anonymous lambda: give the function a name, or pass it under '<lambda>')"
        hint = anonymous if fn == "<lambda>" else ""
        raise ValueError(
            f"Layer '{layer_name}' is a Lambda around function '{fn}'{hint}. Model files never store "
            f"code, so loading runs none: pass the function, e.g. "
            f"dj.load_model(path, custom_objects={{'{fn}': {fn if fn.isidentifier() else 'fn'}}})."
        )
    try:
        return klass.from_config(config)
    except Exception as err:
        if _names_its_layer(err):
            raise
        message = f"Cannot rebuild layer '{layer_name}' ({name}) from its config: {str(err).rstrip('.')}."
        raise ValueError(f"{message} {_hint(err, klass)}") from err


def _hint(err: Exception, klass: type) -> str:
    """What to do about a config the class could not be made from, from what went wrong."""
    if isinstance(err, TypeError) and "unexpected keyword argument" in str(err):
        return (
            f"{klass.__name__}.get_config() returns an argument its __init__ does not take: make them agree "
            "(Keras style: take **kwargs in __init__ and pass them to super().__init__)."
        )
    return "If the config names custom functions or classes, pass them in custom_objects."
