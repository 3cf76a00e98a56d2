"""Ops on symbolic tensors as graph nodes: one ``Operation`` layer class for every registered op.

An op (``dagjax.ops.mean``, ``x + y``, ``x[:, 0]``) is a plain function on arrays, registered
under its ``keras.ops`` name with :func:`operation`. Called on arrays it just computes; called
with a symbolic tensor among its tensor arguments, it records an :class:`Operation` node: the
op's name, its static arguments (an axis, a shape) and, as the node's args, its tensor
arguments, where constants may stand (``x * 2``). That is how Keras 3 records ops in a
functional model, and what its files hold. A file names ops only: loading looks them up in the
registry and runs nothing from the file.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from dagjax._graph import Node, describe_shapes, flatten, is_symbolic, map_structure
from dagjax._naming import to_snake_case, unique_name
from dagjax.layers._base import Layer, LayerInputError
from dagjax.layers._registry import register_builtin
from dagjax.layers._specs import PROBE_SIZES, TensorSpec, as_spec, merge_probes, probe

_PARAMETER = inspect.Parameter


class OpSpec(NamedTuple):
    """A registered op: its function on arrays, which parameters are tensors, and Keras's class for it."""

    name: str  # the dagjax.ops name, which files record
    function: Callable
    signature: inspect.Signature
    tensors: tuple[str, ...]  # parameters passed as the node's args (tensors, or constants in their place)
    static: tuple[str, ...]  # the others, kept in the node's config
    keras_module: str  # Keras 3's module and class for the op, as its files name them
    keras_class: str

    def tensor_args(self, bound: dict) -> tuple:
        """The node's args from bound arguments: the tensor parameters' values (``*args`` spread out)."""
        args: list = []
        for name in self.tensors:
            spread = self.signature.parameters[name].kind is _PARAMETER.VAR_POSITIONAL
            args.extend(bound[name]) if spread else args.append(bound[name])
        return tuple(args)

    def invoke(self, args: tuple, arguments: dict) -> Any:
        """``function`` called with the node's tensor ``args`` and static ``arguments``, each in its place."""
        positional, rest, keywords = [], list(args), {}
        for p in self.signature.parameters.values():
            if p.kind is _PARAMETER.VAR_POSITIONAL:
                positional, rest = positional + rest, []
            elif p.name in self.tensors:
                positional.append(rest.pop(0))
            elif p.kind is _PARAMETER.KEYWORD_ONLY:
                keywords[p.name] = arguments[p.name]
            elif p.kind is not _PARAMETER.VAR_KEYWORD:
                positional.append(arguments[p.name])
        return self.function(*positional, **keywords)


_OPS: dict[str, OpSpec] = {}


def operation(keras_class: str, module: str = "numpy", tensors: tuple[str, ...] = ("x",)) -> Callable:
    """Register ``function`` (on arrays) as an op, and return the op users call.

    ``tensors`` names the parameters that take tensors (the node's args; a ``*args``
    parameter among them takes any number); the others are static and go in the node's
    config. ``keras_class`` and ``module`` (``numpy``, ``nn``, ``math``, ``core``,
    ``linalg``) are Keras 3's ``keras.src.ops.<module>.<keras_class>``, for its files.
    """

    def register(function: Callable) -> Callable:
        signature = inspect.signature(function)
        static = tuple(
            p.name
            for p in signature.parameters.values()
            if p.name not in tensors and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )
        name, keras_module = function.__name__, f"keras.src.ops.{module}"
        spec = OpSpec(name, function, signature, tuple(tensors), static, keras_module, keras_class)
        _OPS[spec.name] = spec

        @functools.wraps(function)
        def op(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            call_args = spec.tensor_args(bound.arguments)
            if not any(is_symbolic(leaf) for leaf in flatten(call_args)):
                return function(*args, **kwargs)
            return Operation(spec.name, {name: bound.arguments[name] for name in static})(*call_args)

        return op

    return register


def op_spec(name: str, node: str = "?") -> OpSpec:
    """The registered op ``name``; a clear error for a name no op has (a file can name only these)."""
    spec = _OPS.get(name)
    if spec is None:
        raise ValueError(
            f"Unknown op '{name}' (node '{node}'). Model files name ops of dagjax.ops only, never code; "
            f"known ops: {', '.join(sorted(_OPS))}."
        )
    return spec


def op_for_keras(module: str, class_name: str) -> OpSpec | None:
    """The registered op Keras 3 writes as ``module.class_name`` (``keras.src.ops.numpy.Add``), if any."""
    for spec in _OPS.values():
        if (spec.keras_module, spec.keras_class) == (module, class_name):
            return spec
    return None


def _as_data(value: Any, key: str) -> Any:
    """A static argument as plain data: tuples for lists (JSON gives lists back), dtype names for dtypes."""
    if is_symbolic(value):
        raise TypeError(f"argument `{key}` must be a constant (an axis, a shape, a number), not a tensor")
    if isinstance(value, (list, tuple)):
        return tuple(_as_data(v, key) for v in value)
    if key == "dtype" and value is not None:
        return np.dtype(value).name
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_json(value: Any) -> Any:
    """A static argument as JSON data: lists for tuples."""
    return [_as_json(v) for v in value] if isinstance(value, tuple) else value


class Operation(Layer):
    """A node applying the registered op ``op`` with its static ``arguments`` (Keras's ``Operation``).

    Made by the ops themselves (``dagjax.ops.mean(x, axis=1)``, ``x + 1``); it has no weights.
    As Keras's operations (not layers), it computes in the dtypes it is given: no dtype-policy casts.
    """

    autocast = False

    def __init__(
        self, op: str, arguments: dict | None = None, name: str | None = None, **kwargs: Any
    ) -> None:
        spec = op_spec(op, name or "?")
        super().__init__(name=name or unique_name(to_snake_case(spec.keras_class)), **kwargs)
        given = dict(arguments or {})
        parameters = spec.signature.parameters
        unknown = sorted(set(given) - set(spec.static))
        missing = [n for n in spec.static if n not in given and parameters[n].default is _PARAMETER.empty]
        if unknown or missing:
            problems = ([f"got unknown arguments {unknown}"] if unknown else []) + (
                [f"lacks arguments {missing}"] if missing else []
            )
            raise TypeError(
                f"dagjax.ops.{op} (node '{self.name}') {' and '.join(problems)}; "
                f"it takes {list(spec.static)} besides its tensors {list(spec.tensors)}."
            )
        given = {name: given.get(name, parameters[name].default) for name in spec.static}
        try:
            self.arguments = {key: _as_data(value, key) for key, value in given.items()}
        except TypeError as err:
            raise TypeError(f"dagjax.ops.{op} (node '{self.name}'): {err}.") from None
        self.spec = spec
        self._weight_specs = []

    @property
    def op(self) -> str:
        """The op's ``dagjax.ops`` name."""
        return self.spec.name

    def call(self, params: dict, *args: Any) -> Any:
        """The op on arrays, with the node's static arguments."""
        return self.spec.invoke(args, self.arguments)

    def input_error(self, message: str) -> LayerInputError:
        """An error that names the op and its node."""
        return LayerInputError(f"dagjax.ops.{self.op} (node '{self.name}') {message}.")

    def compute_output_spec(self, *args: Any) -> Any:
        """Output specs by tracing the op on shape-only stand-ins; constants stay as they are."""
        leaves, treedef = jax.tree_util.tree_flatten(args, is_leaf=lambda a: isinstance(a, TensorSpec))
        where = [i for i, leaf in enumerate(leaves) if isinstance(leaf, TensorSpec)]
        unknown = any(None in leaves[i].shape for i in where)

        def run(*tensors: Any) -> Any:
            filled = list(leaves)
            for i, tensor in zip(where, tensors):
                filled[i] = tensor
            return self.call({}, *jax.tree_util.tree_unflatten(treedef, filled))

        def trace(size: int) -> Any:
            try:
                return jax.eval_shape(run, *(probe(leaves[i], size) for i in where))
            except Exception as err:
                stand_in = (
                    f" (shape inference traces each unknown dimension as {size}, the size in this message)"
                    if unknown and str(size) in str(err) else ""
                )
                raise self.input_error(
                    f"cannot take inputs of shape {describe_shapes(args)}{stand_in}: "
                    f"{type(err).__name__}: {str(err).rstrip('.')}"
                ) from err

        first = trace(PROBE_SIZES[0])
        return merge_probes(first, trace(PROBE_SIZES[1]) if unknown else first)

    def __call__(self, *args: Any) -> Any:
        """Record the op on symbolic tensors (constants may stand among them); on arrays, compute it."""
        if not any(is_symbolic(leaf) for leaf in flatten(args)):
            return self.call({}, *args)
        specs = map_structure(lambda a: as_spec(a) if is_symbolic(a) else a, args)
        node = Node(self, args, self.compute_output_spec(*specs))
        self._inbound_nodes.append(node)
        return node.outputs

    def get_config(self) -> dict:
        """The node's name, the op's name and its static arguments (JSON data: lists for tuples)."""
        arguments = {key: _as_json(value) for key, value in self.arguments.items()}
        return {"name": self.name, "trainable": self.trainable, "op": self.op, "arguments": arguments}

    def __repr__(self) -> str:
        return f"<Operation {self.op} name={self.name!r}>"


register_builtin(Operation, "Operation")  # model files name it; dagjax.ops makes it, not users

__all__ = ["Operation", "OpSpec", "op_for_keras", "op_spec", "operation"]
