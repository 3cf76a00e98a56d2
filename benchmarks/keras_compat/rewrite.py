"""The one rewrite the compatibility measure allows: Keras imports become dagjax imports.

Only ``import keras...`` and ``from keras... import ...`` statements change; every other
line of the file is left as it is. Each imported name is looked up in dagjax under its
public Keras path (Keras's private ``keras.src.X`` modules are read as the public
``keras.X`` they are exported as, by the table below), and bound to that dagjax object.
A name dagjax does not have becomes a :class:`Missing` placeholder, so only the code that
uses it fails (with "dagjax has no keras.X"), not the whole file.

    keras                                   -> dagjax
    keras.src.X / keras.X                   -> dagjax.X
    keras.src.testing (TestCase)            -> benchmarks/keras_compat/testing_shim.py
    table below: private Keras paths with a different public name
"""

from __future__ import annotations

import ast
import importlib

SHIM = "keras_compat.testing_shim"

# (private Keras module, name) -> (dagjax module, name): where Keras exports the thing under
# another public path than its private module's.
NAMES = {
    ("keras.src", "testing"): (SHIM, None),
    ("keras.src.backend.common.keras_tensor", "KerasTensor"): ("dagjax", "KerasTensor"),
    ("keras.src.dtype_policies", "dtype_policy"): ("dagjax", "config"),  # keras.config.dtype_policy
    ("keras.src.layers.core.input_layer", "Input"): ("dagjax.layers", "Input"),
    ("keras.src.layers.input_spec", "InputSpec"): ("dagjax.layers", "InputSpec"),
    ("keras.src.models", "Functional"): ("dagjax.models", "Functional"),
    ("keras.src.models.model", "model_from_json"): ("dagjax.models", "model_from_json"),
}


class Missing:
    """A Keras name dagjax does not provide: any use of it raises, naming it."""

    def __init__(self, keras_path: str, dagjax_path: str):
        self._message = f"dagjax has no {dagjax_path} (for Keras's {keras_path})"

    def _fail(self, *args, **kwargs):
        raise NotImplementedError(self._message)

    __call__ = _fail

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._fail()

    def __mro_entries__(self, bases):
        self._fail()


def public_module(keras_module: str) -> str:
    """``keras.src.layers`` -> ``dagjax.layers``; ``keras`` -> ``dagjax``."""
    parts = keras_module.split(".")
    if parts[1:2] == ["src"]:
        parts = parts[:1] + parts[2:]
    return ".".join(["dagjax", *parts[1:]])


def resolve(keras_module: str, name: str | None):
    """The dagjax object standing for ``from keras_module import name`` (or the module)."""
    module, attr = NAMES.get((keras_module, name), (public_module(keras_module), name))
    keras_path = f"{keras_module}.{name}" if name else keras_module
    dagjax_path = f"{module}.{attr}" if attr else module
    try:
        found = importlib.import_module(module)
    except ImportError:
        return Missing(keras_path, dagjax_path)
    if attr is None:
        return found
    if hasattr(found, attr):
        return getattr(found, attr)
    try:
        return importlib.import_module(f"{module}.{attr}")
    except ImportError:
        return Missing(keras_path, dagjax_path)


def rewrite(source: str) -> str:
    """``source`` with each Keras import statement replaced by bindings from :func:`resolve`."""
    lines = source.splitlines()
    edits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "keras":
            binds = [
                f"{a.asname or a.name} = _keras_compat.resolve({node.module!r}, {a.name!r})"
                for a in node.names
            ]
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "keras" for a in node.names):
            binds = []
            for a in node.names:
                if a.name.split(".")[0] != "keras":
                    binds.append(f"import {a.name}" + (f" as {a.asname}" if a.asname else ""))
                elif a.asname:
                    binds.append(f"{a.asname} = _keras_compat.resolve({a.name!r}, None)")
                else:
                    binds.append("keras = _keras_compat.resolve('keras', None)")
        else:
            continue
        indent = lines[node.lineno - 1][: node.col_offset]
        edits.append((node.lineno, node.end_lineno, [indent + b for b in binds]))
    for start, end, new in sorted(edits, reverse=True):
        lines[start - 1 : end] = new
    header = "from keras_compat import rewrite as _keras_compat  # added by the rewrite"
    return "\n".join([header, *lines]) + "\n"
