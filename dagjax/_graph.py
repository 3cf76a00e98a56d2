"""Symbolic tensors, the nodes that connect them, and graph ordering.

Calling a layer on symbolic tensors records a :class:`Node`: the layer, the
symbolic arguments it was called with, and the symbolic outputs it produced.
A model is the set of nodes reachable backwards from its outputs. Every walk
here is iterative (explicit stacks), so graphs of any depth are fine.
:func:`by_name` reads every argument given per model input or output.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

if TYPE_CHECKING:
    from dagjax.layers import Layer


class SymbolicTensor:
    """A placeholder with a shape (``None`` for unknown dims) and a dtype.

    Shapes include the batch dimension first, as in Keras:
    ``Input(shape=(32,))`` has shape ``(None, 32)``.
    """

    __slots__ = ("shape", "dtype", "node", "index", "__weakref__")

    def __init__(
        self, shape: Sequence[int | None], dtype: Any, node: Node | None = None, index: int = 0
    ) -> None:
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index

    @property
    def ndim(self) -> int:
        """Rank, batch dim included."""
        return len(self.shape)

    @property
    def name(self) -> str:
        """The name of the layer that produced this tensor."""
        return self.node.layer.name if self.node is not None else "?"

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype.name} from '{self.name}'>"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other) -> bool:
        return self is other

    def __bool__(self) -> bool:
        raise TypeError(self._not_data("has no truth value", "dj.ops.where(x > 0, a, b)"))

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(self._not_data("cannot become a NumPy array", "dj.ops functions"))

    def __iter__(self) -> Any:
        raise TypeError(self._not_data("cannot be iterated over", "x[:, i] or dj.ops.split"))

    def __int__(self) -> int:
        raise TypeError(self._not_data("has no int value", "dj.ops.cast(x, 'int32')"))

    def __float__(self) -> float:
        raise TypeError(self._not_data("has no float value", "dj.ops.cast(x, 'float32')"))

    __array_ufunc__ = None  # ``np_array + x`` defers to ``x.__radd__``, which records a node

    def _not_data(self, problem: str, instead: str) -> str:
        """Why data cannot be read from this tensor, and what to write instead."""
        return (
            f"{self!r} {problem}: it is a placeholder in a graph, not data. To compute with it, use "
            f"{instead} or a layer (Python operators record nodes too: x + 1, x[:, 0]); to get values, "
            "build a dj.Model and call it on arrays."
        )

    def reshape(self, newshape: Sequence[int]) -> SymbolicTensor:
        """``dj.ops.reshape(self, newshape)``, as Keras's tensors have it."""
        return _operator("reshape", self, newshape)

    def squeeze(self, axis: Any = None) -> SymbolicTensor:
        """``dj.ops.squeeze(self, axis)``, as Keras's tensors have it."""
        return _operator("squeeze", self, axis)


_OPERATORS: dict[str, Callable] = {}  # op name -> the op; dagjax.ops fills it (this module cannot import it)


def set_operators(table: dict[str, Callable]) -> None:
    """Give SymbolicTensor its operators: ``table`` maps the name of each op they record to the op."""
    _OPERATORS.update(table)


def _operator(name: str, *args: Any) -> Any:
    op = _OPERATORS.get(name)
    if op is None:
        raise TypeError(f"Operator '{name}' on a SymbolicTensor needs dagjax.ops: import dagjax.")
    return op(*args)


def _binary(name: str, reflected: bool = False) -> Callable:
    def method(self: SymbolicTensor, other: Any) -> Any:
        return _operator(name, other, self) if reflected else _operator(name, self, other)

    method.__doc__ = f"Records ``dj.ops.{name}`` (as Keras's tensors do)."
    return method


def _unary(name: str) -> Callable:
    def method(self: SymbolicTensor) -> Any:
        return _operator(name, self)

    method.__doc__ = f"Records ``dj.ops.{name}`` (as Keras's tensors do)."
    return method


# Keras's KerasTensor operators, each recording the same op (``/`` is true_divide; ``==`` stays identity)
for _dunder, _op in {
    "add": "add", "sub": "subtract", "mul": "multiply", "matmul": "matmul", "truediv": "true_divide",
    "floordiv": "floor_divide", "mod": "mod", "pow": "power", "and": "logical_and", "or": "logical_or",
    "xor": "logical_xor",
}.items():
    setattr(SymbolicTensor, f"__{_dunder}__", _binary(_op))
    setattr(SymbolicTensor, f"__r{_dunder}__", _binary(_op, reflected=True))
for _dunder, _op in {
    "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal", "ne": "not_equal",
    "getitem": "get_item",
}.items():
    setattr(SymbolicTensor, f"__{_dunder}__", _binary(_op))
for _dunder, _op in {"neg": "negative", "abs": "absolute", "invert": "logical_not"}.items():
    setattr(SymbolicTensor, f"__{_dunder}__", _unary(_op))
del _dunder, _op


def _round(self: SymbolicTensor, ndigits: int | None = None) -> Any:
    """``round(x)`` records ``dj.ops.round`` (as Keras's tensors do)."""
    return _operator("round", self, ndigits or 0)


SymbolicTensor.__round__ = _round


def mask_spec(tensor: SymbolicTensor) -> Any:
    """The spec of the Keras mask ``tensor`` carries (``(batch, time)`` bools, usually), or None."""
    masks = tensor.node.output_masks if tensor.node is not None else None
    return None if masks is None else masks[tensor.index]


def is_symbolic(x: Any) -> bool:
    """Whether ``x`` is a :class:`SymbolicTensor` (the ``is_leaf`` of every walk over graph arguments)."""
    return isinstance(x, SymbolicTensor)


def flatten(tree: Any) -> list:
    """Leaves of a nested structure, with SymbolicTensors as leaves."""
    return jax.tree_util.tree_leaves(tree, is_leaf=is_symbolic)


def map_structure(fn: Callable[[Any], Any], tree: Any) -> Any:
    """``jax.tree_util.tree_map`` that stops at SymbolicTensors, so ``fn`` sees them as leaves."""
    return jax.tree_util.tree_map(fn, tree, is_leaf=is_symbolic)


def describe_shapes(tree: Any) -> str:
    """Shapes of a structure of tensors or specs, for error messages."""
    shapes = [tuple(x.shape) for x in flatten(tree) if hasattr(x, "shape")]
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


class Node:
    """One call of a layer: ``outputs = layer(*args, **kwargs)``.

    ``kwargs`` are the call's keyword options, passed to ``apply`` on every
    run: JSON values (an attention layer's ``use_causal_mask``) or symbolic
    tensors (its ``attention_mask``), which count among the node's inputs.
    ``output_masks`` holds, per output tensor, the spec of the Keras mask it
    carries (None: no mask); None when no output has one. ``masked_inputs``
    names the input tensors whose masks the call saw when it was recorded.
    """

    __slots__ = (
        "layer", "args", "kwargs", "outputs", "input_tensors", "output_tensors", "output_masks",
        "masked_inputs",
    )

    def __init__(self, layer: Layer, args: tuple, output_specs: Any, kwargs: dict | None = None) -> None:
        self.layer = layer
        self.args = args  # tensors, and the constants an op takes in their place (``x * 2``)
        self.kwargs = dict(kwargs or {})
        self.output_masks: list | None = None
        self.masked_inputs: frozenset = frozenset()  # ids of the input tensors whose masks this call reads
        self.input_tensors = [t for t in flatten((args, self.kwargs)) if is_symbolic(t)]
        leaves, treedef = jax.tree_util.tree_flatten(output_specs)
        self.output_tensors = [
            SymbolicTensor(spec.shape, spec.dtype, self, i) for i, spec in enumerate(leaves)
        ]
        self.outputs = jax.tree_util.tree_unflatten(treedef, self.output_tensors)

    @property
    def is_input(self) -> bool:
        """Whether this is an ``Input``'s node: it reads no tensors."""
        return not self.input_tensors

    @property
    def parents(self) -> Iterator[Node]:
        """The nodes that produced this node's input tensors (repeats included)."""
        for t in self.input_tensors:
            if t.node is not None:
                yield t.node

    def __repr__(self) -> str:
        return f"<Node {self.layer.name}>"


def collect_nodes(inputs: list[SymbolicTensor], outputs: list[SymbolicTensor]) -> tuple[list[Node], list]:
    """Nodes between ``inputs`` and ``outputs`` in topological order.

    Depth-first post-order from each output in turn (the order Keras uses),
    stopping at the given input tensors; as in Keras, the node of a given
    ``Input`` is part of the graph, and one that no output reads comes first.
    Also returns the layers in order of first visit (unread Inputs first),
    which Keras uses to break ties in ``model.layers``. Raises on cycles
    (impossible through the public API, checked anyway).
    """
    stop_at = {id(t) for t in inputs if not t.node.is_input}
    order: list[Node] = []
    visited_layers: dict[int, Any] = {}
    done: set[int] = set()
    for out in outputs:
        stack: list[tuple[Node, bool]] = []
        if id(out) not in stop_at and out.node is not None:
            stack.append((out.node, False))
        in_progress: set[int] = set()
        while stack:
            node, expanded = stack.pop()
            if id(node) in done:
                continue
            if expanded:
                in_progress.discard(id(node))
                done.add(id(node))
                order.append(node)
                continue
            if id(node) in in_progress:
                raise ValueError(f"Layer '{node.layer.name}' is part of a cycle.")
            in_progress.add(id(node))
            visited_layers.setdefault(id(node.layer), node.layer)
            stack.append((node, True))
            for t in reversed(node.input_tensors):
                if id(t) not in stop_at and t.node is not None and id(t.node) not in done:
                    stack.append((t.node, False))
    unread = [t.node for t in inputs if t.node.is_input and id(t.node) not in done]
    return unread + order, [node.layer for node in unread] + list(visited_layers.values())


def _map_graph_depths(nodes: list[Node]) -> tuple[dict[int, int], dict[int, int]]:
    """Node and layer depths by id, computed as Keras's ``map_graph`` does.

    The depth of a node is the longest path from it to an output, and no
    call of a shared layer is shallower than a call met before it on the
    walk back from the outputs. ``nodes`` is ``collect_nodes``'s order; the
    node depths come in the order Keras inserts them in its ``nodes_depths``
    dict (a node when first seen as the parent of a node, or when reached
    itself), which is its tie order within a depth.
    """
    in_graph = {id(n) for n in nodes}
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for node in reversed(nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        node_depth[id(node)] = depth
        for parent in node.parents:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(node_depth.get(id(parent), 0), depth + 1)
    return node_depth, layer_depth


def depth_order(nodes: list[Node], visit_order: list) -> list:
    """Layers sorted as Keras sorts ``model.layers``: deepest first, ties by first visit."""
    _, layer_depth = _map_graph_depths(nodes)
    first_seen = {id(layer): i for i, layer in enumerate(visit_order)}
    return sorted(visit_order, key=lambda lay: (-layer_depth[id(lay)], first_seen[id(lay)]))


def run_order(nodes: list[Node]) -> list[Node]:
    """``nodes`` in the order Keras's ``Functional`` runs them: deepest first, ties in ``map_graph``'s order.

    Keras runs ``nodes_by_depth`` from the deepest depth down
    (``Function._run_through_graph``). The order matters when a stateful
    layer is shared: its calls update the same state, and the last one wins.
    """
    node_depth, _ = _map_graph_depths(nodes)
    by_id = {id(n): n for n in nodes}
    return sorted((by_id[i] for i in node_depth), key=lambda n: -node_depth[id(n)])  # stable: ties as Keras


class _Required:
    """``by_name``'s ``fill`` when a dict must name every entry."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def by_name(
    value: Any,
    names: Sequence[str] | None,
    what: str,
    *,
    kind: str = "output",
    fill: Any = REQUIRED,
    broadcast: bool = False,
    arrays: bool = False,
    needed: Sequence[bool] | None = None,
    model: str | None = None,
    structure: Any = None,
) -> list:
    """``value``, given per model input or output as Keras takes it, as a list aligned with ``names``.

    ``value`` is a dict keyed by name (for nested outputs, named by their
    paths, ``"others/2"``, also a dict nested as they are), a list in
    ``names`` order, or one value. Every argument with an entry per input or output (a model's
    inputs and outputs, ``x``, ``y``, ``sample_weight``, ``loss``,
    ``loss_weights``, ``metrics``) is read here, and fails here with one set of
    messages naming the argument, the names at fault and the valid names.

    - ``names``: None takes the entries in the structure's own order, as Keras
      flattens a model's inputs and outputs: a dict's by sorted key, a list's as is.
    - ``what``: the argument's name (shown as `loss`), or a plural phrase
      naming the values ("the batch's targets").
    - ``kind``: ``"input"`` or ``"output"``, for the messages.
    - ``fill``: the entry of a name a dict leaves out; ``REQUIRED``: a dict must name them all.
    - ``broadcast``: one value is every name's entry; otherwise it is the entry of the only name.
    - ``arrays``: the entries are arrays, so with one name a list is that array
      (as nested Python lists) unless it holds just one array (or None).
    - ``needed``: per name, whether it needs an entry: a list may then hold
      only the needed entries, and one value goes to the only needed name;
      the other names get ``fill``.
    - ``model``: the model's name, for the messages.
    - ``structure``: the inputs' or outputs' nest (``model.output``); a list nesting as it does (a list
      and a tuple alike, ``[["mse", "mae"], "mse"]`` for outputs ``[[a, b], c]``) gives its entries in
      flat order, as Keras takes it.

    >>> by_name({"b": 0.5}, ["a", "b"], "loss_weights", fill=1.0)
    [1.0, 0.5]
    >>> by_name("mse", ["a", "b"], "loss", broadcast=True)
    ['mse', 'mse']
    """
    if names is None:
        if isinstance(value, dict):
            return [value[k] for k in sorted(value)]
        return list(value) if isinstance(value, (list, tuple)) else [value]
    names = list(names)
    blank = None if fill is REQUIRED else fill
    wanted = None if needed is None else [n for n, need in zip(names, needed) if need]
    context = (what, names, kind, model, wanted, fill)
    nested = is_nested(structure) and isinstance(value, (list, tuple))
    if nested and (entries := entries_like(structure, value)) is not None:
        return entries
    if isinstance(value, dict):
        value = _keyed_by_path(value, names)
        unknown = [k for k in value if k not in names]
        missing = [n for n in names if n not in value]
        if kind == "input" and fill is REQUIRED and unknown and not missing:
            if not any(_is_data(value[k]) for k in unknown):  # as Keras: building a graph drops them quietly
                return [value[n] for n in names]
            warnings.warn(  # Keras's words: it warns and drops the entries no input reads
                f"The structure of `inputs` doesn't match the expected structure: {names}. The model "
                f"{f'{model!r} ' if model else ''}has no inputs named {unknown}: those entries are ignored.",
                stacklevel=3,
            )
            return [value[n] for n in names]
        if fill is REQUIRED and (missing or unknown):
            parts = [f"missing {missing}"] if missing else []
            parts += [f"unknown {unknown}"] if unknown else []
            problem = f"a dict whose keys do not match the {kind} names: {', '.join(parts)}"
            raise _names_error(problem, *context, advise=False)
        if unknown:
            raise _names_error(f"a dict naming unknown {kind}s {unknown}", *context, advise=False)
        return [value.get(n, fill) for n in names]
    if kind == "input" and arrays and len(names) == 1 and _holds_arrays(value) and len(value) > 1:
        raise _names_error(f"a list of {len(value)} arrays", *context)  # not one array as nested lists
    one_value = arrays and len(names) == 1 and not _holds_one_array(value)
    if isinstance(value, (list, tuple)) and not one_value:
        if len(value) == len(names):
            return list(value)
        if wanted is not None and len(value) == len(wanted):
            entries = iter(value)
            return [next(entries) if need else blank for need in needed]
        count = "" if arrays else " entry" if len(value) == 1 else " entries"
        if nested:
            count += f" nested as {_outline(value)}, not as the {kind}s {_outline(structure)}"
        raise _names_error(f"a list of {len(value)}{count}", *context)
    if broadcast or len(names) == 1:
        return [value] * len(names)
    if wanted is not None and len(wanted) == 1:
        return [value if need else blank for need in needed]
    raise _names_error(f"one {'array' if arrays else 'value'}", *context)


def _keyed_by_path(value: dict, names: list[str]) -> dict:
    """A dict nesting dicts as a model's outputs nest (``{"others": {"2": "mse"}}``, as Keras takes losses,
    metrics and targets) keyed by those outputs' names, their paths (``"others/2"``); others unchanged."""
    if all(key in names or not isinstance(entry, dict) for key, entry in value.items()):
        return value
    pairs, _ = jax.tree_util.tree_flatten_with_path(value, is_leaf=lambda x: not isinstance(x, dict))
    return {"/".join(str(entry.key) for entry in path): leaf for path, leaf in pairs}


def entries_like(structure: Any, value: Any) -> list | None:
    """``value``'s entries at ``structure``'s leaves, in its flat order (a dict's keys sorted), when ``value``
    nests as ``structure`` does down to them (an entry may itself be a list: an output's metrics); else None.

    ``jax.tree_util``'s ``flatten_up_to`` does this but tells a list from a tuple, which Keras code mixes.
    """
    if not isinstance(structure, (list, tuple, dict)):
        return [value]
    if isinstance(structure, dict):
        if not isinstance(value, dict) or sorted(value) != sorted(structure):
            return None
        pairs = [(structure[key], value[key]) for key in sorted(structure)]
    elif isinstance(value, (list, tuple)) and len(value) == len(structure):
        pairs = list(zip(structure, value))
    else:
        return None
    entries: list = []
    for part, given in pairs:
        found = entries_like(part, given)
        if found is None:
            return None
        entries += found
    return entries


def is_nested(structure: Any) -> bool:
    """Whether ``structure`` nests containers (``[[x]]``, ``[{"foo": x}]``, ``{"a": {"b": x}}``): more than
    the one tensor, flat list or flat dict dagjax models have always taken."""
    if not isinstance(structure, (list, tuple, dict)):
        return False
    children = structure.values() if isinstance(structure, dict) else structure
    return any(isinstance(child, (list, tuple, dict)) for child in children)


def _outline(structure: Any) -> Any:
    """``structure`` with each leaf shown as ``*``, as Keras shows the structures it compares."""
    return jax.tree_util.tree_map(lambda _: "*", structure,
                                  is_leaf=lambda x: not isinstance(x, (list, tuple, dict)))


def _is_data(x: Any) -> bool:
    """Values (arrays, numbers, nested lists), not a symbolic tensor or a shape-only spec."""
    return isinstance(x, (np.ndarray, jax.Array, np.generic, int, float, list, tuple))


def _holds_arrays(value: Any) -> bool:
    """A list or tuple of arrays (or symbolic tensors): one per input, not one array as nested lists."""
    return isinstance(value, (list, tuple)) and all(hasattr(v, "shape") for v in value)


def _holds_one_array(value: Any) -> bool:
    """A list or tuple of one array (or None): a one-input or one-output model's list of entries."""
    if not isinstance(value, (list, tuple)) or len(value) != 1:
        return False
    return value[0] is None or hasattr(value[0], "shape")


def _names_error(
    problem: str,
    what: str,
    names: list[str],
    kind: str,
    model: str | None,
    wanted: list[str] | None,
    fill: Any,
    advise: bool = True,
) -> ValueError:
    """``by_name``'s one set of messages: what ``what`` is, the names the model has, and the fix."""
    subject = f"`{what}` is" if what.isidentifier() else f"{what[0].upper()}{what[1:]} are"
    owner = f"model '{model}'" if model else "the model"
    if kind == "input":  # Keras's words, which Keras code matches on
        message = f"{subject} {problem}; {owner} expects {len(names)} named input(s) with keys {names}"
    else:
        message = f"{subject} {problem}; {owner} has {len(names)} output{'s' * (len(names) != 1)} {names}"
    partial = wanted is not None and len(wanted) != len(names)
    if partial:
        message += f", of which {wanted} need an entry"
    if advise:
        fix = f"one entry per {kind}" + (f" (None where an {kind} has none)" if fill is None else "")
        fix += f", one per {kind} that needs one" if partial else ""
        message += f". Pass {fix}, or a dict keyed by {kind} name"
    return ValueError(message + ".")


def adjust_input_rank(x: Any, expected: tuple) -> Any:
    """Keras's one-axis leniency: a missing trailing axis of size 1 is added, an extra one dropped.

    So ``(n,)`` feeds an ``Input(shape=(1,))`` and ``(n, 3, 1)`` an ``Input(shape=(3,))``.
    """
    shape = tuple(x.shape)
    if len(shape) == len(expected) - 1 and expected[-1] == 1:
        return x.reshape(*shape, 1)
    if len(shape) == len(expected) + 1 and shape[-1] == 1:
        return x.reshape(shape[:-1])
    return x


def check_input_shape(
    name: str, expected: tuple, got: tuple, model_name: str, any_rows: bool = False, path: tuple = (),
) -> None:
    """Raise the error naming input ``name`` when an array of shape ``got`` cannot feed it.

    ``any_rows``: ``got`` is a whole data set, whose row count is not a batch size. ``path``: the
    input's place in the model's inputs (dict keys and list indices), which a wrong rank names as Keras does.
    """
    got = tuple(got)
    if len(got) != len(expected):
        raise ValueError(  # Keras's words (its _adjust_input_rank), which Keras code matches on
            f"Invalid input shape for the input of model '{model_name}' with name '{name}' and path "
            f"'{'.'.join(map(str, path))}'. Expected shape {expected}, but input has incompatible shape "
            f"{got}."
        )
    dims = zip(expected[1:], got[1:]) if any_rows else zip(expected, got)
    if any(e is not None and e != g for e, g in dims):
        raise ValueError(  # Keras's words after dagjax's names: Keras code matches on them
            f"Input '{name}' of model '{model_name}' is incompatible: "
            f"expected shape={expected}, found shape={got}."
        )
