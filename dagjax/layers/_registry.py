"""Layer classes by the name model files record for them.

A model file stores each layer as a class name plus its ``get_config()``.
Loading turns the name back into a class, looking in this order:
``custom_objects`` passed to ``load_model``, classes registered with
:func:`register_layer`, then the built-ins: every public layer class in
``dagjax.layers``, and the classes packages above this one add with
:func:`register_builtin` (``dagjax.model`` adds ``Functional`` / ``Model`` /
``Sequential``, so this package never imports the model). Nothing else is
imported or evaluated, so a file can only ever name classes the program already has.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

from dagjax.layers._base import Layer

_REGISTERED: dict[str, type] = {}
_BUILTINS_ABOVE: dict[str, type] = {}  # built-ins defined above this package, by every name they load under
_SCOPE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("custom_objects", default=None)


@contextlib.contextmanager
def custom_object_scope(custom_objects: dict | None) -> Iterator[None]:
    """Make ``custom_objects`` visible to nested ``from_config`` calls (wrappers) while a model loads."""
    token = _SCOPE.set(in_scope(custom_objects))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def in_scope(custom_objects: dict | None) -> dict:
    """``custom_objects`` on top of those of the enclosing :func:`custom_object_scope`."""
    return {**(_SCOPE.get() or {}), **(custom_objects or {})}


def register_builtin(cls: type, *names: str) -> None:
    """Make ``cls``, defined in a package above this one, a built-in loadable under each of ``names``.

    Files record the first name (Keras writes a ``Model`` as ``"Functional"``).
    ``dagjax.model`` calls this when it is imported.
    """
    for name in names:
        _BUILTINS_ABOVE[name] = cls


def _builtins() -> dict[str, type]:
    """Every public layer class of ``dagjax.layers``, and those :func:`register_builtin` added."""
    from dagjax import layers  # the package imports this module (through its wrappers): import late

    found = {
        name: obj
        for name, obj in vars(layers).items()
        if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer and not name.startswith("_")
    }
    return {**found, **_BUILTINS_ABOVE}


def register_layer(cls: type | None = None, *, name: str | None = None) -> Any:
    """Let model files name a custom layer class, so ``load_model`` can rebuild it.

    Use as a decorator (``@dj.register_layer`` or ``@dj.register_layer(name="pkg>MyLayer")``)
    or call it on a class. The name defaults to the class name; it must not
    shadow a built-in layer. Registering a new class under a name already
    registered replaces the old one (re-running a notebook cell).
    """

    def register(klass: type) -> type:
        if not (isinstance(klass, type) and issubclass(klass, Layer)):
            raise TypeError(f"register_layer takes a dagjax Layer subclass, got {klass!r}.")
        key = name if name is not None else klass.__name__
        builtin = _builtins().get(key)
        if builtin is not None and builtin is not klass:
            raise ValueError(
                f"Cannot register {klass.__qualname__} as '{key}': that is the name of the built-in "
                f"{builtin.__module__}.{builtin.__qualname__}. Pass another name: "
                f"register_layer(name='mypackage>{key}')."
            )
        for other_key, other in list(_REGISTERED.items()):
            if other is klass and other_key != key:
                del _REGISTERED[other_key]
        _REGISTERED[key] = klass
        return klass

    return register if cls is None else register(cls)


def class_name(layer: Layer) -> str:
    """The name a model file records for ``layer``'s class (``saved_class`` when the layer names one)."""
    klass = getattr(layer, "saved_class", None) or type(layer)
    for key, registered in (*_REGISTERED.items(), *_BUILTINS_ABOVE.items()):
        if registered is klass:
            return key
    return klass.__name__


def resolve(name: str, custom_objects: dict | None, layer_name: str) -> type:
    """The class a file names, from ``custom_objects``, the registry, or the built-ins."""
    for source in (custom_objects or {}, _REGISTERED, _builtins()):
        klass = source.get(name)
        if klass is not None:
            if not (isinstance(klass, type) and issubclass(klass, Layer)):
                raise TypeError(f"custom_objects[{name!r}] must be a dagjax Layer subclass, got {klass!r}.")
            return klass
    raise ValueError(
        f"Unknown layer class '{name}' (layer '{layer_name}'). Model files store only class names, "
        f"never code: make the class known with the @dj.register_layer decorator, or pass "
        f"custom_objects={{'{name}': {name}}} to dj.load_model."
    )


def substitute(config: dict, custom_objects: dict | None) -> dict:
    """Replace config values that name a custom object with that object.

    A string value (a function's name, e.g. an activation) becomes the
    object; a ``{"class_name": ..., "config": ...}`` value naming a custom
    class (an initializer, a regularizer) becomes an instance of it.
    """
    if not custom_objects:
        return config
    out = {}
    for key, value in config.items():
        if key != "name" and isinstance(value, str) and value in custom_objects:
            value = custom_objects[value]
        elif isinstance(value, dict) and value.get("class_name") in custom_objects:
            klass: Callable = custom_objects[value["class_name"]]
            if not (isinstance(klass, type) and issubclass(klass, Layer)):
                from_config = getattr(klass, "from_config", None)
                inner = value.get("config", {})
                value = from_config(inner) if from_config is not None else klass(**inner)
        out[key] = value
    return out
