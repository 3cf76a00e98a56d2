"""``clone_model``: the same architecture with new layers and fresh weights, as Keras's.

A functional model is cloned by replaying its layer calls, in graph order,
on new inputs with each layer replaced by its clone (one clone per layer, so
shared layers stay shared); a Sequential by stacking the clones of its layers.
A layer's clone is ``type(layer).from_config(layer.get_config())``, as in
Keras, with the functions and classes it holds (a Lambda's function, a custom
activation or initializer) handed back in, so nothing needs registering; a
nested model is cloned the same way, whole. The clone is compiled as the
model was. Its weights are made afresh on first use, like any new model's:
with the same seed and layer names, they equal the original's initial weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from dagjax._graph import flatten, is_symbolic, map_structure
from dagjax.layers import Input, Layer
from dagjax.layers._registry import class_name, custom_object_scope, substitute
from dagjax.model._functional import Model
from dagjax.model._sequential import Sequential


def _held_objects(layer: Layer) -> dict[str, Any]:
    """The functions and classes ``layer`` and the layers inside it hold, by the names their configs use."""
    objects: dict[str, Any] = {}
    pending = [layer]
    while pending:
        current = pending.pop()
        for value in vars(current).values():
            if isinstance(value, (Layer, type)):
                continue
            if hasattr(value, "get_config"):  # an initializer or a regularizer object: its class
                objects[type(value).__name__] = type(value)
            elif callable(value) and isinstance(getattr(value, "__name__", None), str):
                objects[value.__name__] = value
        for sub in current.sublayers.values():
            objects[class_name(sub)] = type(sub)
            pending.append(sub)
    return objects


def clone_layer(layer: Layer) -> Layer:
    """A new, unbuilt layer with ``layer``'s config (and name): Keras's default ``clone_function``."""
    if isinstance(layer, Model):
        return clone_model(layer)
    objects = _held_objects(layer)
    with custom_object_scope(objects):
        return type(layer).from_config(substitute(layer.get_config(), objects))


def _cloner(clone_function: Callable | None, call_function: Callable | None, recursive: bool) -> Callable:
    """``layer -> clone``, made once per layer (shared layers stay shared), nested models as asked."""
    cache: dict[int, Layer] = {}

    def clone(layer: Layer) -> Layer:
        if id(layer) not in cache:
            if recursive and isinstance(layer, Model):
                calls = None if isinstance(layer, Sequential) else call_function  # Keras: not a Sequential's
                cache[id(layer)] = clone_model(layer, None, clone_function, calls, recursive)
            else:
                cache[id(layer)] = (clone_function or clone_layer)(layer)
        return cache[id(layer)]

    return clone


def _new_inputs(model: Model, input_tensors: Any) -> Any:
    """``input_tensors`` checked against ``model.input``'s structure, or new Inputs like the model's."""
    if input_tensors is None:
        return map_structure(lambda t: Input(batch_shape=t.shape, dtype=t.dtype, name=t.name), model.input)
    leaves = flatten(input_tensors)
    same = jax.tree.structure(input_tensors, is_leaf=is_symbolic) == jax.tree.structure(
        model.input, is_leaf=is_symbolic
    )
    if not same or not all(is_symbolic(t) for t in leaves):
        raise ValueError(
            f"clone_model(input_tensors=...) must be symbolic tensors (dj.Input) in the structure of "
            f"model.input: {model.input}; got {input_tensors}."
        )
    return input_tensors


def _clone_functional(
    model: Model, input_tensors: Any, clone: Callable, call_function: Callable | None
) -> Model:
    """The model's calls replayed on new inputs with cloned layers."""
    inputs = _new_inputs(model, input_tensors)
    new = {id(old): t for old, t in zip(flatten(model.input), flatten(inputs))}
    call = call_function or (lambda layer, *args: layer(*args))
    for node in model.nodes:
        args = map_structure(lambda t: new[id(t)] if is_symbolic(t) else t, node.args)
        outputs = call(clone(node.layer), *args)
        new.update((id(old), t) for old, t in zip(node.output_tensors, flatten(outputs)))
    outputs = map_structure(lambda t: new[id(t)], model.output)
    cls = type(model) if type(model).__init__ is Model.__init__ else Model
    return cls(inputs, outputs, name=model.name, trainable=model.trainable)


def _clone_sequential(model: Sequential, input_tensors: Any, clone: Callable) -> Sequential:
    """A Sequential of the layers' clones, on ``input_tensors`` or an Input like the model's (if any)."""
    if isinstance(input_tensors, (list, tuple)):
        if len(input_tensors) != 1:
            raise ValueError("clone_model(input_tensors=...) of a Sequential takes one tensor.")
        (input_tensors,) = input_tensors
    if input_tensors is not None and not is_symbolic(input_tensors):
        raise ValueError(
            f"clone_model(input_tensors=...) must be a symbolic tensor (dj.Input), got {input_tensors!r}."
        )
    first = model._input_tensor
    if input_tensors is None and first is not None:
        input_tensors = Input(batch_shape=first.shape, dtype=first.dtype, name=first.name)
    stack = [clone(layer) for layer in model.layers]
    head = [] if input_tensors is None else [input_tensors]
    return Sequential(head + stack, name=model.name, trainable=model.trainable)


def _compile_like(clone: Model, model: Model) -> None:
    """Compile ``clone`` with the arguments ``model`` was compiled with (a fresh optimizer state)."""
    if model.fit_session is not None:
        clone.compile(**model.fit_session.compile_arguments)
    elif isinstance(model, Sequential) and model._pending_compile is not None:
        args, kwargs = model._pending_compile
        clone.compile(*args, **kwargs)


def clone_model(
    model: Model,
    input_tensors: Any = None,
    clone_function: Callable[[Layer], Layer] | None = None,
    call_function: Callable[..., Any] | None = None,
    recursive: bool = False,
) -> Model:
    """A new model of ``model``'s architecture: new layers, fresh weights, compiled as ``model`` is.

    As Keras's: ``input_tensors`` builds it on given ``dj.Input`` tensors;
    ``clone_function(layer) -> layer`` replaces the default clone of each layer
    (``clone_layer``); ``call_function(layer, *args)`` replaces each call
    (functional models); ``recursive`` clones nested models with these same
    functions instead of passing them to ``clone_function``.

    >>> twin = clone_model(model)
    >>> twin.set_weights(model.get_weights())  # to copy the weights too
    """
    if not isinstance(model, Model):
        raise TypeError(f"clone_model takes a dagjax Model or Sequential, got {type(model).__name__}.")
    clone = _cloner(clone_function, call_function, recursive)
    if isinstance(model, Sequential):
        if call_function is not None:
            raise ValueError("clone_model(call_function=...) applies to functional models, not a Sequential.")
        cloned = _clone_sequential(model, input_tensors, clone)
    else:
        cloned = _clone_functional(model, input_tensors, clone, call_function)
    _compile_like(cloned, model)
    return cloned
