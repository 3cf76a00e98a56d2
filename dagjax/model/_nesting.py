"""A model's inputs and outputs as any nest of lists, tuples and dicts, read as Keras 3 reads them.

Keras flattens a structure with ``tree.flatten`` (dict keys sorted, as ``jax.tree_util`` sorts them)
and names a leaf by its path, the dict keys and list indices down to it: ``"0.foo"`` in its input
errors, ``"others/2"`` in its loss names. ``jax.tree_util``'s key paths give both here; a list and a
tuple have the same paths, so one may stand for the other, as in Keras.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax

from dagjax._graph import is_nested


def _is_leaf(x: Any) -> bool:
    """Anything but a list, tuple or dict: a tensor, an array, a spec, or None (Keras's none_is_leaf)."""
    return not isinstance(x, (list, tuple, dict))


def _key(entry: Any) -> Any:
    """The dict key, list index or field name a ``jax.tree_util`` path entry stands for."""
    for attribute in ("key", "idx", "name"):
        if hasattr(entry, attribute):
            return getattr(entry, attribute)
    return entry


def paths_and_leaves(structure: Any) -> list[tuple[tuple, Any]]:
    """``(path, leaf)`` pairs in Keras's flat order; a path is the keys and indices to its leaf (``()``
    for a lone tensor)."""
    pairs, _ = jax.tree_util.tree_flatten_with_path(structure, is_leaf=_is_leaf)
    return [(tuple(map(_key, path)), leaf) for path, leaf in pairs]


def leaves_like(structure: Any, value: Any) -> list | None:
    """``value``'s leaves in ``structure``'s flat order when it nests as ``structure`` does (a list and a
    tuple alike), else None."""
    given = paths_and_leaves(value)
    if [path for path, _ in given] != [path for path, _ in paths_and_leaves(structure)]:
        return None
    return [leaf for _, leaf in given]


def output_names(structure: Any, layer_names: list[str]) -> list[str]:
    """The name of each output: as Keras names their losses, the path joined by ``/`` with a last list
    index replaced by the output's layer name. So a flat dict's keys, a list's layer names (repeats
    numbered, ``dense_1``), and ``"others/2"`` for ``{"others": {"2": x}}``."""
    names = []
    for (path, _), layer_name in zip(paths_and_leaves(structure), layer_names):
        if not path or isinstance(path[-1], int):
            path = (*path[:-1], layer_name)
        names.append("/".join(map(str, path)))
    return _numbered(names)


def _numbered(names: list[str]) -> list[str]:
    """Repeated names numbered from their second use: ``["a", "a"]`` -> ``["a", "a_1"]``."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_{count}")
    return out


def in_key_order(structure: Any, value: Any) -> Any:
    """``value`` (a tree ``jax.jit`` returned, its dicts by sorted key) with every dict's keys in the order
    ``structure`` has them, as a Keras model returns its outputs."""
    if isinstance(structure, dict) and isinstance(value, dict) and structure.keys() == value.keys():
        return {key: in_key_order(structure[key], value[key]) for key in structure}
    sequences = isinstance(structure, (list, tuple)) and isinstance(value, (list, tuple))
    if sequences and len(structure) == len(value):
        return type(value)(in_key_order(s, v) for s, v in zip(structure, value))
    return value


def check_input_structure(structure: Any, value: Any, model_name: str, input_names: list[str]) -> None:
    """Keras's check of arrays given to a model built with a dict or a nested structure of inputs.

    A list for a dict, or a structure that nests otherwise, warns in Keras's words and goes on (its
    entries are taken in ``model.inputs`` order); it is an error where that order is not the one the
    dict was written in (Keras flattens a dict by sorted key, so the list would feed the wrong inputs).
    A list and a tuple are alike; a dict for a list, one array for a dict, or a list of one for a dict of
    one (Keras warns; nothing is ambiguous) are ``by_name``'s to take or refuse.
    """
    if is_nested(structure):
        if leaves_like(structure, value) is not None:
            return
    elif not (isinstance(structure, dict) and len(structure) > 1 and isinstance(value, (list, tuple))):
        return  # a list of one for a dict of one can only mean its one input: dagjax takes it quietly
    expected = in_key_order(structure, jax.tree_util.tree_map(lambda t: t.name, structure, is_leaf=_is_leaf))
    received = in_key_order(value, jax.tree_util.tree_map(
        lambda x: "None" if x is None else f"Tensor(shape={tuple(getattr(x, 'shape', ()))})",
        value, is_leaf=_is_leaf,
    ))
    message = (
        "The structure of `inputs` doesn't match the expected structure.\n"
        f"Expected: {expected}\nReceived: inputs={received}\n"
    )
    unordered = isinstance(structure, dict) and list(structure) != sorted(structure)
    if unordered and not isinstance(value, dict):
        raise ValueError(
            message + f"Model '{model_name}' takes a list in its flat input order {input_names} (a dict's "
            f"keys sorted), not in the order its dict was written: pass a dict keyed by input name."
        )
    warnings.warn(
        message + f"Model '{model_name}' takes the entries in its flat input order {input_names}.",
        stacklevel=3,
    )
