"""A model's config: its layers and the calls between them, as Keras's functional config records them.

Each layer is ``layers._serialization``'s ``{"class_name", "config"}``. A
functional model adds, for each layer, the calls made to it inside the model
(``inbound_nodes``): each call's arguments with every tensor written as a
reference ``{"tensor": [layer_name, node_index, tensor_index]}``, meaning
output ``tensor_index`` of that layer's ``node_index``-th call in this model.
An op's call may hold constants among its tensors (``x * 2``, ``x[:, None, 1:]``):
numbers, strings and None as they are, ``{"slice": [start, stop, step]}``,
``{"ellipsis": null}`` and ``{"array": {"value", "dtype"}}``.
Inputs and outputs are references too, in the structure the model was built
with (one tensor, a list, a dict, or any nest of them, as Keras records it).
Nested models nest their own config; a Sequential records its input and its
list of layers.

Rebuilding makes every layer from its config, then replays the calls: a call
runs as soon as the tensors it reads exist, each layer's calls in their
recorded order, so shared layers get their nodes back in the same order.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from dagjax._graph import SymbolicTensor, is_symbolic
from dagjax.layers import Input, InputLayer, Layer
from dagjax.layers._serialization import layer_from_config, layer_to_config

if TYPE_CHECKING:
    from dagjax.model import Model, Sequential


# ------------------------------------------------------------------ to config
def sequential_config(model: Sequential) -> dict:
    """``model``'s name, trainable flag, input (if it has one yet) and list of layer configs."""
    first = model._input_tensor
    return {
        "name": model.name,
        "trainable": model.trainable,
        "input": None if first is None else first.node.layer.get_config(),
        "layers": [layer_to_config(layer) for layer in model.layers],
    }


def _encode(structure: Any, ref) -> Any:
    if is_symbolic(structure):
        return {"tensor": ref(structure)}
    if isinstance(structure, (list, tuple)):
        return [_encode(x, ref) for x in structure]
    if isinstance(structure, dict):
        return {"dict": {k: _encode(v, ref) for k, v in structure.items()}}
    if structure is None or isinstance(structure, (bool, int, float, str)):
        return structure  # an op's constant (``x * 2``) or a call option (use_causal_mask)
    if isinstance(structure, slice):
        return {"slice": [structure.start, structure.stop, structure.step]}
    if structure is Ellipsis:
        return {"ellipsis": None}
    if hasattr(structure, "dtype") and hasattr(structure, "shape"):  # a NumPy or JAX array, or scalar
        value = np.asarray(structure)
        return {"array": {"value": value.tolist(), "dtype": value.dtype.name}}
    raise TypeError(f"Cannot record a layer call argument of type {type(structure).__name__}.")


def _encode_call(node: Any, ref) -> Any:
    """A call's arguments as a list, or ``{"args", "kwargs"}`` when it was given keyword options."""
    args = _encode(list(node.args), ref)
    return {"args": args, "kwargs": _encode(node.kwargs, ref)} if node.kwargs else args


def split_call(call: Any) -> tuple[Any, Any]:
    """A recorded call's ``(args, kwargs)`` as encoded (kwargs None when it has none)."""
    if isinstance(call, dict) and "args" in call:
        return call["args"], call.get("kwargs")
    return call, None


def functional_config(model: Model) -> dict:
    """``model``'s layers, each with its calls inside the model, and its inputs and outputs, as references."""
    for tensor in model.inputs:
        if not isinstance(tensor.node.layer, InputLayer):
            raise ValueError(
                f"Model '{model.name}' cannot be saved: its input comes from layer "
                f"'{tensor.node.layer.name}', not from dj.Input. Build it on dj.Input tensors to save it."
            )
    in_model = {id(node) for node in model._nodes}
    calls: dict[int, list] = {}
    index: dict[int, int] = {}
    for layer in model.operations:
        nodes = [n for n in layer.inbound_nodes if isinstance(layer, InputLayer) or id(n) in in_model]
        calls[id(layer)] = nodes
        index.update((id(node), i) for i, node in enumerate(nodes))

    def ref(tensor: SymbolicTensor) -> list:
        return [tensor.node.layer.name, index[id(tensor.node)], tensor.index]

    entries = []
    for layer in model.operations:
        entry = layer_to_config(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [] if isinstance(layer, InputLayer) else [
            _encode_call(node, ref) for node in calls[id(layer)]
        ]
        entries.append(entry)
    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": entries,
        "input_layers": _encode(model._input_structure, ref),
        "output_layers": _outputs_kept(model._output_structure, _encode(model._output_structure, ref)),
    }


# ------------------------------------------------------------------ from config
def sequential_from_config(
    cls: type[Sequential], config: dict, custom_objects: dict | None = None
) -> Sequential:
    """A ``cls`` (a Sequential) from its ``get_config()``, with fresh weights."""
    model = cls(name=config["name"], trainable=config.get("trainable", True))
    first = config.get("input")
    if first is not None:
        model.add(Input(batch_shape=tuple(first["batch_shape"]), dtype=first["dtype"], name=first["name"]))
    for spec in config["layers"]:
        model.add(layer_from_config(spec, custom_objects))
    return model


def _refs(encoded: Any) -> list:
    if isinstance(encoded, list):
        return [r for x in encoded for r in _refs(x)]
    if isinstance(encoded, dict):
        if "tensor" in encoded:
            return [encoded["tensor"]]
        if "args" in encoded:
            return _refs(encoded["args"]) + _refs(encoded.get("kwargs"))
        return [r for x in encoded.get("dict", {}).values() for r in _refs(x)]
    return []


def _outputs_kept(structure: Any, encoded: Any) -> Any:
    """Outputs given as a tuple stay a tuple in the config (as Keras's, until JSON makes it a list)."""
    return tuple(encoded) if isinstance(structure, tuple) else encoded


def _decode(encoded: Any, produced: dict) -> Any:
    if isinstance(encoded, tuple):
        return tuple(_decode(x, produced) for x in encoded)
    if isinstance(encoded, list):
        return [_decode(x, produced) for x in encoded]
    if isinstance(encoded, dict):
        if "tensor" in encoded:
            layer_name, node_index, tensor_index = encoded["tensor"]
            return produced[layer_name][node_index][tensor_index]
        if "slice" in encoded:
            return slice(*encoded["slice"])
        if "ellipsis" in encoded:
            return Ellipsis
        if "array" in encoded:
            return np.asarray(encoded["array"]["value"], dtype=encoded["array"]["dtype"])
        return {k: _decode(v, produced) for k, v in encoded["dict"].items()}
    return encoded


def _is_legacy_ref(x: Any, size: int) -> bool:
    """A Keras 2 reference ``[layer, call, output]`` (``size`` 3) or ``[layer, call, output, kwargs]`` (4)."""
    return (
        isinstance(x, list) and len(x) == size and isinstance(x[0], str)
        and all(isinstance(i, int) for i in x[1:3]) and (size == 3 or isinstance(x[3], dict))
    )


def _modern_call(call: Any) -> Any:
    """A Keras 2 call (a list of ``[layer, call, output, kwargs]``) as dagjax's encoding; others unchanged."""
    if not (isinstance(call, list) and call and all(_is_legacy_ref(x, 4) for x in call)):
        return call
    tensors = [{"tensor": x[:3]} for x in call]
    kwargs = {k: v for x in call for k, v in x[3].items()}
    args = tensors[0] if len(tensors) == 1 else tensors
    return {"args": [args], "kwargs": kwargs} if kwargs else [args]


def _modern_ends(ends: Any) -> Any:
    """Keras 2's ``input_layers`` / ``output_layers`` (``[layer, call, output]`` lists) as references."""
    if _is_legacy_ref(ends, 3):
        return {"tensor": ends}
    if isinstance(ends, list) and ends and all(_is_legacy_ref(x, 3) for x in ends):
        return [{"tensor": x} for x in ends]
    return ends


def functional_from_config(cls: type[Model], config: dict, custom_objects: dict | None = None) -> Model:
    """A ``cls`` (a functional model) from its ``get_config()``: its layers rebuilt, their calls replayed.

    Keras 2's reference lists (``[[["dense", 0, 0, {}]]]``, which Keras 3 still reads) are read too.
    """
    layers: dict[str, Layer] = {}
    pending: dict[str, list] = {}
    produced: dict[str, list] = {}  # layer name -> output tensors of each call so far
    for entry in config["layers"]:
        layer = layer_from_config(entry, custom_objects)
        layers[entry["name"]] = layer
        pending[entry["name"]] = [_modern_call(call) for call in entry.get("inbound_nodes", [])]
        is_input = isinstance(layer, InputLayer)
        produced[entry["name"]] = [layer.inbound_nodes[0].output_tensors] if is_input else []

    def ready(call: Any) -> bool:
        for layer_name, node_index, _ in _refs(call):
            if layer_name not in produced:
                raise ValueError(
                    f"Model config '{config['name']}' refers to layer '{layer_name}', which it does not "
                    f"list (Missing node: {layer_name})."
                )
            if node_index >= len(produced[layer_name]) and not pending[layer_name]:
                raise ValueError(
                    f"Model config '{config['name']}' refers to call {node_index} of layer '{layer_name}', "
                    f"which is only called {len(produced[layer_name])} times."
                )
        return all(node_index < len(produced[name]) for name, node_index, _ in _refs(call))

    while any(pending.values()):
        progressed = False
        for layer_name, calls in pending.items():
            while calls and ready(calls[0]):
                layer = layers[layer_name]
                args, kwargs = split_call(calls.pop(0))
                layer(*_decode(args, produced), **(_decode(kwargs, produced) or {}))
                produced[layer_name].append(layer.inbound_nodes[-1].output_tensors)
                progressed = True
        if not progressed:
            stuck = [name for name, calls in pending.items() if calls]
            raise ValueError(
                f"Model config '{config['name']}' has calls that can never run, each waiting for another's "
                f"output (a loop): layers {stuck}."
            )
    inputs = _decode(_modern_ends(config["input_layers"]), produced)
    outputs = _decode(_modern_ends(config["output_layers"]), produced)
    return cls(inputs, outputs, name=config["name"], trainable=config.get("trainable", True))


# ------------------------------------------------------------------ JSON
def model_to_json(model: Layer, **kwargs: Any) -> str:
    """``model``'s ``{"class_name", "config"}`` as a JSON string (``json.dumps`` options in ``kwargs``)."""
    return json.dumps(layer_to_config(model), **kwargs)


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Layer:
    """The model (with fresh weights) a ``model.to_json()`` string describes: Keras's ``model_from_json``."""
    return layer_from_config(json.loads(json_string), custom_objects)
