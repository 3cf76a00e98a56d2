"""``compile``'s arguments as JSON data for a model file, and back (Keras's ``get_compile_config``).

A model file records how its model was compiled, so ``load_model`` gives it
back compiled, as Keras does. Only what a file can describe is recorded:
Keras names, dagjax's losses, metrics and Keras-style optimizers (each says
how it was made, built-in learning-rate schedules included), numbers, and
functions by name. An optax transformation, a lambda or any other schedule is
code: :func:`compile_config` raises ``NotSerializableError`` saying which, and
the file is saved without it.
"""

from __future__ import annotations

from dagjax.training.objectives._serialization import NotSerializableError as NotSerializableError
from dagjax.training.objectives._serialization import deserialize, serialize
from dagjax.training.optimizers import _keras as optimizers

# compile argument -> the kind of its leaves (None: numbers and names)
_KINDS = {"loss": "loss", "loss_weights": None, "metrics": "metric", "weighted_metrics": "metric"}
_PLAIN = ("steps_per_execution", "seed")
# recorded since auto_scale_loss was saved; a file written before has none and gets the default
_OPTIONAL = {"auto_scale_loss": True}


def compile_config(arguments: dict) -> dict:
    """``compile``'s ``arguments`` (the optimizer as ``optimizers.get`` made it) as JSON data."""
    config = {"optimizer": optimizers.serialize(arguments["optimizer"])}
    config.update({name: serialize(arguments[name], kind) for name, kind in _KINDS.items()})
    config.update({name: arguments[name] for name in _PLAIN})
    config.update({name: arguments.get(name, default) for name, default in _OPTIONAL.items()})
    return config


def compile_arguments(config: dict, custom_objects: dict | None = None) -> dict:
    """The keyword arguments to ``model.compile`` that ``config`` records.

    A name that neither dagjax nor ``custom_objects`` knows raises ValueError.
    """
    required = {"optimizer", *_KINDS, *_PLAIN}
    if not isinstance(config, dict) or not required <= set(config) <= required | set(_OPTIONAL):
        raise ValueError(
            f"A compile config has the keys optimizer, {', '.join([*_KINDS, *_PLAIN])} "
            f"(and optionally {', '.join(_OPTIONAL)})."
        )
    arguments = {"optimizer": optimizers.deserialize(config["optimizer"])}
    arguments.update({name: deserialize(config[name], kind, custom_objects) for name, kind in _KINDS.items()})
    arguments.update({name: config[name] for name in _PLAIN})
    arguments.update({name: config.get(name, default) for name, default in _OPTIONAL.items()})
    return arguments
