"""A fit batch's inputs and targets, cut as flat lists, in the structures the model was built with.

Keras hands a custom ``train_step`` the ``data`` it was given, so a model built on ``[x1, {"b": x2}]``
reads its batch's inputs nested so; dagjax's steps get the same (the pure form and Keras's JAX form).
"""

from __future__ import annotations

from typing import Any

import jax

from dagjax._graph import is_nested


def inputs_as_built(model: Any, xs: list) -> Any:
    """``xs`` (``model.inputs`` order) as the one array, list, dict by input name or nest of the model."""
    return _as_built(model.input, list(xs), model.input_names)


def targets_as_built(model: Any, ys: list) -> Any:
    """``ys`` (``model.outputs`` order, None where absent) in the structure of the model's outputs."""
    return _as_built(model.output, list(ys), model.output_names)


def _as_built(structure: Any, entries: list, names: list[str]) -> Any:
    if is_nested(structure):
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(structure), entries)
    if isinstance(structure, dict):
        return dict(zip(names, entries))
    return entries[0] if len(entries) == 1 else entries
