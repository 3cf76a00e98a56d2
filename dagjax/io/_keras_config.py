"""Keras 3's model config (a ``.keras`` file's ``config.json``) as dagjax's model config, and back.

dagjax layers take Keras's constructor arguments, so a layer's arguments mostly pass as they are.
What differs is the wrapping (Keras's ``serialization_lib`` and ``models/functional.py``):

- Keras writes objects as ``{"module", "class_name", "config", "registered_name"}``: a dtype
  policy (dagjax keeps its name: a dtype, ``mixed_float16``, ``mixed_bfloat16``), initializers
  and regularizers (dagjax's ``{"class_name", "config"}``, an initializer without its ``seed``:
  the weights come from the file), and a wrapper's layers;
- Keras adds ``build_config`` (input shapes, which dagjax infers from the graph) and
  ``compile_config`` (not read: a model loads uncompiled);
- a functional model writes a call's tensors as ``{"class_name": "__keras_tensor__", "config":
  {"shape", "dtype", "keras_history": [layer, call, output]}}`` where dagjax writes
  ``{"tensor": [layer, call, output]}``, a dict plainly where dagjax writes ``{"dict": ...}``,
  and numbers a nested functional model's calls from 1 in ``input_layers`` / ``output_layers``;
- a Sequential lists its InputLayer first among its layers; dagjax records it apart;
- an op (``keras.ops.add``, ``x[:, 0]``) is ``{"module": "keras.src.ops.numpy", "class_name":
  "Add", "config": {"name", ...its static arguments}}``, where dagjax writes an ``Operation``
  naming the ``dagjax.ops`` function; constants among a call's args are Keras's ``__slice__``,
  ``__ellipsis__`` and ``__numpy__`` records, dagjax's ``slice``, ``ellipsis`` and ``array``.

A Keras argument dagjax lacks is dropped while it holds the value that asks for nothing
(``_UNUSED``) or when it cannot change what dagjax computes (``_IRRELEVANT``). Another value, a
key only tf.keras 2 wrote, a Keras operation dagjax.ops lacks, or a layer class dagjax lacks
is a ``CheckpointError`` naming the layer (and the key or class).
"""

from __future__ import annotations

from typing import Any

from dagjax import layers as _layers
from dagjax.io._arrays import CheckpointError
from dagjax.layers import InputLayer, Lambda, Layer
from dagjax.layers import _dtype_policy as dtype_policies
from dagjax.layers._operation import Operation, op_for_keras
from dagjax.layers._registry import in_scope, resolve
from dagjax.layers._serialization import layer_to_config
from dagjax.model import Model, Sequential

# Keras arguments dagjax does not have, by layer class, with the value that asks for nothing.
_UNUSED: dict[str, dict[str, Any]] = {
    "InputLayer": {"sparse": False, "ragged": False, "optional": False},
    "BatchNormalization": {"renorm": False},
    "Flatten": {"data_format": "channels_last"},
}
# Keras arguments that change nothing dagjax does, whatever their value: batch renormalization's
# settings, which matter only with ``renorm=True`` (refused above).
_IRRELEVANT = {"renorm_clipping", "renorm_momentum"}
_OLD_KEYS = {"batch_input_shape": "batch_shape"}  # tf.keras 2's names, with Keras 3's
_DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy")
_LAYER_MODULES = ("keras.layers", "keras", "keras.models", "keras.src.models.functional")
_FUNCTIONAL = {"module": "keras.src.models.functional", "registered_name": "Functional"}


def _label(entry: dict) -> str:
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    return f"layer '{config.get('name', entry.get('name', '?'))}' ({entry.get('class_name', '?')})"


# ------------------------------------------------------------------ Keras -> dagjax
def from_keras(entry: Any, path: str) -> dict:
    """The dagjax ``{"class_name", "config"}`` of a Keras layer or model entry from ``path``."""
    if not (isinstance(entry, dict) and isinstance(entry.get("class_name"), str)):
        raise CheckpointError(
            f"'{path}': a layer entry must be a dict with a class_name, got {entry!r:.200}."
        )
    config, label = entry.get("config"), _label(entry)
    if not isinstance(config, dict) or "module" not in entry:
        raise CheckpointError(
            f"'{path}': {label} is written as tf.keras 2 wrote layers (no 'module', or no config dict); "
            "dagjax reads Keras 3 files. Load the model with Keras 3 and save it again."
        )
    module, name = entry["module"], entry["class_name"]
    if module.startswith("keras.src.ops."):
        return _operation(name, module, config, label, path)
    if module.startswith("keras") and module not in _LAYER_MODULES:
        raise CheckpointError(
            f"'{path}': {label} is the Keras object {module}.{name}, which is neither a layer nor an "
            "op; dagjax rebuilds models of layers and ops only."
        )
    if module.startswith("keras") and name not in ("Functional", "Sequential"):
        _check_known(name, config.get("name", "?"), module, path)
    if name == "Functional":
        return {"class_name": name, "config": _functional(config, path)}
    if name == "Sequential":
        return {"class_name": name, "config": _sequential(config, path)}
    custom = entry.get("registered_name") if not module.startswith("keras") else None
    return {"class_name": custom or name, "config": _arguments(config, name, label, path)}


def _operation(name: str, module: str, config: dict, label: str, path: str) -> dict:
    """dagjax's ``Operation`` entry for a Keras op: the dagjax.ops function Keras's class is, by name."""
    spec = op_for_keras(module, name)
    if spec is None:
        raise CheckpointError(
            f"'{path}': {label} is the Keras op {module}.{name}, which dagjax.ops does not have; rebuild the "
            "model in Keras with the ops dagjax.ops lists (or a layer) and save it again."
        )
    arguments = {key: value for key, value in config.items() if key != "name"}
    config = {"name": config.get("name"), "op": spec.name, "arguments": arguments}
    return {"class_name": "Operation", "config": config}


def _check_known(name: str, layer: str, module: str, path: str) -> None:
    """A Keras layer class must be one dagjax has, or one registered or in custom_objects under its name."""
    try:
        resolve(name, in_scope(None), layer)
    except (ValueError, TypeError) as err:
        raise CheckpointError(
            f"'{path}': layer '{layer}' is a Keras {name} ({module}), a class dagjax does not have. To load "
            f"it, write a dagjax layer taking Keras's arguments and weights, and pass "
            f"custom_objects={{'{name}': YourLayer}} to dj.load_model."
        ) from err


def _arguments(config: dict, class_name: str, label: str, path: str) -> dict:
    """A layer's arguments with Keras's objects unwrapped and its unused arguments dropped."""
    out = {}
    unused = _UNUSED.get(class_name, {})
    for key, value in config.items():
        if key in _OLD_KEYS:
            raise CheckpointError(
                f"'{path}': {label} has the key '{key}', which tf.keras 2 wrote (Keras 3 writes "
                f"'{_OLD_KEYS[key]}'); dagjax reads Keras 3 files. Load the model with Keras 3 and save "
                "it again."
            )
        if key in unused and value != unused[key]:
            raise CheckpointError(
                f"'{path}': {label} has {key}={value!r}; dagjax does not support {key} (only "
                f"{unused[key]!r}, Keras's default)."
            )
        if key in unused or key in _IRRELEVANT:
            continue
        out[key] = _value(value, f"{label}'s {key}", path)
    return out


def _value(value: Any, what: str, path: str) -> Any:
    """One argument: a Keras object dict unwrapped to what dagjax's ``from_config`` takes."""
    if not (isinstance(value, dict) and "class_name" in value and "config" in value):
        return value
    name, module, inner = value["class_name"], value.get("module"), value["config"]
    if name in _DTYPE_POLICIES:
        return _dtype(inner.get("name") if isinstance(inner, dict) else None, what, path)
    if name == "function":  # a named function (a custom activation): by name, for custom_objects
        return inner
    if module == "keras.initializers" and isinstance(inner, dict):
        kept = {k: v for k, v in inner.items() if k != "seed" and v is not None}
        return {"class_name": name, "config": kept}
    if module in ("keras.regularizers", "keras.constraints"):
        return {"class_name": name, "config": inner}
    if "module" in value:  # a layer inside a wrapper
        return from_keras(value, path)
    return value


def _dtype(name: Any, what: str, path: str) -> str:
    """A dtype policy's name as a layer's ``dtype=`` takes it (a dtype or a mixed policy; not quantized)."""
    try:
        if isinstance(name, str):
            return dtype_policies.get(name).name
    except ValueError:
        pass
    raise CheckpointError(
        f"'{path}': {what} is the dtype policy {name!r}; dagjax reads plain dtypes (float32, "
        "float16, ...) and mixed_float16 / mixed_bfloat16 from Keras files, not quantized policies."
    )


def _tensors(args: Any, label: str, path: str) -> Any:
    """A call's arguments with Keras's tensor records as dagjax's ``{"tensor": ...}`` references.

    Constants an op takes among its tensors (a slice of an index, an array) become dagjax's records of them.
    """
    if isinstance(args, list):
        return [_tensors(x, label, path) for x in args]
    if isinstance(args, dict):
        kind, inner = args.get("class_name"), args.get("config")
        if kind == "__keras_tensor__":
            return {"tensor": list(inner["keras_history"])}
        if kind == "__slice__":
            return {"slice": [inner.get("start"), inner.get("stop"), inner.get("step")]}
        if kind == "__ellipsis__":
            return {"ellipsis": None}
        if kind in ("__numpy__", "__tensor__"):
            return {"array": {"value": inner["value"], "dtype": inner["dtype"]}}
        if "class_name" in args:
            raise CheckpointError(f"'{path}': {label} is called on a {args['class_name']!r}, not a tensor.")
        return {"dict": {k: _tensors(v, label, path) for k, v in args.items()}}
    return args


def _call(node: Any, label: str, path: str, keywords: tuple = ()) -> Any:
    """One recorded call's arguments; keyword arguments must be the defaults Keras records.

    Keras records ``training=False`` for a layer that takes ``training`` (its functional model
    passes its own training mode over it, as ``model.apply`` does); ``mask=None`` for others.
    A layer's ``call_keywords`` (an attention layer's) are kept: ``{"args", "kwargs"}``.
    """
    if not (isinstance(node, dict) and isinstance(node.get("args"), list)):
        raise CheckpointError(
            f"'{path}': {label} records a call in tf.keras 2's form ({node!r:.100}); dagjax reads Keras 3 "
            "files. Load the model with Keras 3 and save it again."
        )
    recorded = node.get("kwargs") or {}
    given = {k: v for k, v in recorded.items() if v is not None and not (k == "training" and v is False)}
    keywords = (*keywords, "mask")  # a mask Keras passed (the one it computed): dagjax's calls take mask= too
    kept = {k: v for k, v in given.items() if k in keywords and k != "training"}
    given = {k: v for k, v in given.items() if k not in keywords}
    if given:
        raise CheckpointError(
            f"'{path}': {label} is called with keyword arguments {given!r:.200}; dagjax layers take tensors "
            "only (the training mode is model.apply's, for every layer at once)."
        )
    args = _tensors(node["args"], label, path)
    return {"args": args, "kwargs": _tensors(kept, label, path)} if kept else args


def _call_keywords(class_name: str, layer_name: str) -> tuple:
    """The keyword arguments the named layer class's symbolic call takes (none for a class not found)."""
    try:
        return resolve(class_name, in_scope(None), layer_name).call_keywords
    except (ValueError, TypeError, AttributeError):
        return ()


def _ends(structure: Any, functional: set[str]) -> Any:
    """``input_layers`` / ``output_layers`` as dagjax's references (a nested model's calls from 0)."""
    if isinstance(structure, list) and len(structure) == 3 and isinstance(structure[0], str):
        layer, call, index = structure
        return {"tensor": [layer, call - (layer in functional), index]}
    if isinstance(structure, dict):
        return {"dict": {k: _ends(v, functional) for k, v in structure.items()}}
    return [_ends(x, functional) for x in structure]


def _functional(config: dict, path: str) -> dict:
    layers = []
    for entry in config.get("layers", []):
        layer = from_keras(entry, path)
        label = _label(entry)
        layer["name"] = entry.get("name", layer["config"].get("name"))
        keywords = _call_keywords(layer["class_name"], layer["config"].get("name", "?"))
        layer["inbound_nodes"] = [
            _call(node, label, path, keywords) for node in entry.get("inbound_nodes", [])
        ]
        layers.append(layer)
    functional = {layer["name"] for layer in layers if layer["class_name"] == "Functional"}
    return {
        "name": config.get("name"),
        "trainable": config.get("trainable", True),
        "layers": layers,
        "input_layers": _ends(config.get("input_layers", []), functional),
        "output_layers": _ends(config.get("output_layers", []), functional),
    }


def _sequential(config: dict, path: str) -> dict:
    entries = list(config.get("layers", []))
    first = None
    if entries and isinstance(entries[0], dict) and entries[0].get("class_name") == "InputLayer":
        entry = entries.pop(0)
        first = {"name": None, "dtype": "float32", **from_keras(entry, path)["config"]}
    elif config.get("build_input_shape") is not None:
        first = {"name": None, "dtype": "float32", "batch_shape": config["build_input_shape"]}
    return {
        "name": config.get("name"),
        "trainable": config.get("trainable", True),
        "input": first,
        "layers": [from_keras(entry, path) for entry in entries],
    }


# ------------------------------------------------------------------ dagjax -> Keras
def _policy(dtype: str) -> dict:
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": dtype},
        "registered_name": None,
    }


def keras_class_name(layer: Layer) -> str:
    """The class a Keras file names for ``layer``: its own, an op's, or ``Functional`` / ``Sequential``."""
    if isinstance(layer, Operation):
        return layer.spec.keras_class
    if isinstance(layer, Model):
        return "Sequential" if isinstance(layer, Sequential) else "Functional"
    return type(layer).__name__


def to_keras(layer: Layer) -> dict:
    """Keras's entry for ``layer`` (a model included), as ``keras.models.load_model`` reads it."""
    if isinstance(layer, Sequential):
        return {
            "module": "keras",
            "class_name": "Sequential",
            "config": _sequential_to_keras(layer),
            "registered_name": None,
        }
    if isinstance(layer, Model):
        return {**_FUNCTIONAL, "class_name": "Functional", "config": _functional_to_keras(layer)}
    if isinstance(layer, Operation):
        config = layer.get_config()
        return {
            "module": layer.spec.keras_module,
            "class_name": layer.spec.keras_class,
            "config": {"name": layer.name, **config["arguments"]},
            "registered_name": layer.spec.keras_class,
        }
    _check_writable(layer)
    return _entry_to_keras(layer_to_config(layer))


def _check_writable(layer: Layer) -> None:
    """``layer`` and the layers it wraps must be dagjax's own classes of Keras's names (not Lambda)."""
    klass = type(layer)
    if vars(_layers).get(klass.__name__) is not klass or klass is Lambda:
        what = "a Lambda (Keras would need its code)" if klass is Lambda else "not a class Keras has"
        raise ValueError(
            f"Cannot write layer '{layer.name}' ({klass.__name__}) to a Keras file: it is {what}. A Keras "
            "file names Keras's own layer classes only."
        )
    if isinstance(layer, _layers.MultiHeadAttention):
        return  # its projections are Keras's EinsumDense, written as part of it
    for sub in layer.sublayers.values():
        _check_writable(sub)


def _entry_to_keras(spec: dict) -> dict:
    """Keras's entry for a built-in layer's dagjax ``{"class_name", "config"}``."""
    name, config = spec["class_name"], spec["config"]
    if name == "InputLayer":
        return {"module": "keras.layers", "class_name": name, "config": config, "registered_name": None}
    out: dict[str, Any] = {"dtype": _policy(dtype_policies.get(config.get("dtype", "float32")).name)}
    for key, value in config.items():
        if key == "dtype":
            continue
        if isinstance(value, dict) and "class_name" in value:
            kind = key.rsplit("_", 1)[-1]
            module = {"initializer": "keras.initializers", "regularizer": "keras.regularizers"}.get(kind)
            value = (
                _entry_to_keras(value)  # a wrapper's layer
                if module is None
                else {**value, "module": module, "registered_name": None}
            )
        out[key] = value
    return {"module": "keras.layers", "class_name": name, "config": out, "registered_name": None}


def _sequential_to_keras(model: Sequential) -> dict:
    config = model.get_config()
    if config["input"] is None:
        raise ValueError(
            f"Cannot write Sequential '{model.name}' to a Keras file before it has an input shape."
        )
    first = _entry_to_keras({"class_name": "InputLayer", "config": config["input"]})
    return {
        "name": model.name,
        "trainable": model.trainable,
        "dtype": _policy("float32"),
        "layers": [first, *(to_keras(layer) for layer in model.layers)],
        "build_input_shape": list(config["input"]["batch_shape"]),
    }


def _split_call(call: Any) -> tuple[Any, Any]:
    """A dagjax config's call as ``(args, kwargs)``: a list of arguments, or ``{"args", "kwargs"}``."""
    if isinstance(call, dict) and "args" in call:
        return call["args"], call.get("kwargs")
    return call, None


def _functional_to_keras(model: Model) -> dict:
    config = model.get_config()
    in_model = {id(node) for node in model.nodes}
    outputs = {}  # (layer name, call) -> that call's output tensors, counted as dagjax's config counts them
    for layer in model.operations:
        calls = [n for n in layer.inbound_nodes if isinstance(layer, InputLayer) or id(n) in in_model]
        outputs.update(((layer.name, i), node.output_tensors) for i, node in enumerate(calls))

    def tensors(encoded: Any) -> Any:
        if isinstance(encoded, list):
            return [tensors(x) for x in encoded]
        if isinstance(encoded, dict) and "tensor" in encoded:
            layer, call, index = encoded["tensor"]
            x = outputs[layer, call][index]
            record = {"shape": list(x.shape), "dtype": x.dtype.name, "keras_history": [layer, call, index]}
            return {"class_name": "__keras_tensor__", "config": record}
        if isinstance(encoded, dict) and "dict" in encoded:
            return {k: tensors(v) for k, v in encoded["dict"].items()}
        if isinstance(encoded, dict):
            return _constant_to_keras(encoded)
        return encoded

    functional = {layer.name for layer in model.operations if keras_class_name(layer) == "Functional"}

    def ends(encoded: Any) -> Any:
        if isinstance(encoded, list):
            return [ends(x) for x in encoded]
        if "tensor" in encoded:
            layer, call, index = encoded["tensor"]
            return [layer, call + (layer in functional), index]
        return {k: ends(v) for k, v in encoded["dict"].items()}

    layers = []
    for entry in config["layers"]:
        keras_entry = to_keras(model.get_layer(entry["name"]))
        keras_entry["name"] = entry["name"]
        keras_entry["inbound_nodes"] = [
            {"args": tensors(args), "kwargs": tensors(kwargs) or {}}
            for args, kwargs in map(_split_call, entry["inbound_nodes"])
        ]
        layers.append(keras_entry)
    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": layers,
        "input_layers": ends(config["input_layers"]),
        "output_layers": ends(config["output_layers"]),
    }


def _constant_to_keras(encoded: dict) -> dict:
    """Keras's record of a constant among an op's args, from dagjax's (``model._config``'s ``_encode``)."""
    if "slice" in encoded:
        start, stop, step = encoded["slice"]
        return {"class_name": "__slice__", "config": {"start": start, "stop": stop, "step": step}}
    if "ellipsis" in encoded:
        return {"class_name": "__ellipsis__", "config": {}}
    return {"class_name": "__numpy__", "config": dict(encoded["array"])}
