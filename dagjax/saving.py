"""Keras's ``keras.saving`` names: model files, custom object registration, config round trips.

>>> from dagjax import saving
>>> @saving.register_keras_serializable(package="my_package")
... class Scale(layers.Layer): ...
>>> model = saving.load_model("model.keras", custom_objects={"scaled_relu": scaled_relu})

``register_keras_serializable`` registers a layer (or model) class under Keras's
``"package>Name"``, which is what files record. Files never hold code, so only layer classes
are looked up by name: another object (a loss or an activation function) goes in
``custom_objects``, and registering one says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagjax.io import custom_object_scope as custom_object_scope
from dagjax.io import layer_from_config, layer_to_config, register_layer
from dagjax.io import load_model as load_model
from dagjax.io import load_weights as load_weights
from dagjax.io import save_model as save_model
from dagjax.io import save_weights as save_weights
from dagjax.layers import Layer

CustomObjectScope = custom_object_scope  # Keras's class name for the same context manager


def register_keras_serializable(package: str = "Custom", name: str | None = None) -> Callable[[type], type]:
    """Decorator: files name the layer class ``"package>Name"`` and ``load_model`` finds it by that name."""

    def register(obj: Any) -> Any:
        if not (isinstance(obj, type) and issubclass(obj, Layer)):
            raise TypeError(
                f"register_keras_serializable: dagjax registers layer and model classes only, got "
                f"{obj!r}. Model files never store code, so pass other objects (losses, metrics, "
                "activation functions) by name when loading: load_model(path, custom_objects={...})."
            )
        return register_layer(obj, name=f"{package}>{name or obj.__name__}")

    return register


def serialize_keras_object(layer: Layer) -> dict:
    """A layer's or model's ``{"class_name", "config"}``, JSON data, as model files record it."""
    return layer_to_config(layer)


def deserialize_keras_object(config: dict, custom_objects: dict | None = None) -> Layer:
    """The layer or model a :func:`serialize_keras_object` dict describes, with fresh weights."""
    return layer_from_config(config, custom_objects)
