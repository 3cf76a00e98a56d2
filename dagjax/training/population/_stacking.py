"""Members' pytrees stacked on a leading axis, and taken apart again.

A population keeps one pytree whose every leaf has a leading member axis:
``stack([ts_0, ts_1])`` of two train states is one train state whose
``params["dense"]["kernel"]`` has shape ``(2, *kernel.shape)``. Members must
share the tree's structure, shapes and dtypes (one architecture); when they
do not, the error names the first weight that differs.

>>> both = stack([{"w": jnp.zeros(3)}, {"w": jnp.ones(3)}])
>>> both["w"].shape
(2, 3)
>>> member(both, 1)["w"]
Array([1., 1., 1.], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _described(tree: Any) -> dict[str, tuple]:
    """Each leaf's path (``keystr``) -> ``(shape, dtype)``."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): (tuple(np.shape(v)), np.result_type(v)) for path, v in flat}


def check_same_architecture(trees: Sequence[Any], what: str = "member") -> None:
    """Raise unless every tree has the first's structure, shapes and dtypes, naming the first difference."""
    first = _described(trees[0])
    for index, tree in enumerate(trees[1:], start=1):
        other = _described(tree)
        for path in [*first, *(p for p in other if p not in first)]:
            if path not in other:
                raise ValueError(f"{what} {index} has no {path}, which {what} 0 has: not one architecture.")
            if path not in first:
                raise ValueError(f"{what} {index} has {path}, which {what} 0 has not: not one architecture.")
        for path, (shape, dtype) in first.items():
            if other[path] != (shape, dtype):
                got_shape, got_dtype = other[path]
                raise ValueError(
                    f"{what} {index}'s {path} has shape {got_shape} ({got_dtype}) where {what} 0's has "
                    f"{shape} ({dtype}): members of a population share one architecture."
                )
        if jax.tree_util.tree_structure(tree) != jax.tree_util.tree_structure(trees[0]):
            raise ValueError(f"{what} {index}'s tree is not structured as {what} 0's: not one architecture.")


def stack(trees: Sequence[Any]) -> Any:
    """One pytree whose leaves are the members' leaves stacked on a new leading axis."""
    trees = list(trees)
    if not trees:
        raise ValueError("stack needs at least one member, got none.")
    check_same_architecture(trees)
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def member(tree: Any, index: int) -> Any:
    """Member ``index`` of a stacked pytree: every leaf's row ``index``."""
    return jax.tree_util.tree_map(lambda leaf: leaf[index], tree)


def size_of(tree: Any) -> int:
    """The number of members of a stacked pytree (its leaves' common leading size)."""
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree_util.tree_leaves(tree)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"Not a stacked pytree: its leaves' leading sizes are {sorted(map(str, sizes))}.")
    return sizes.pop()


def unstack(tree: Any, size: int | None = None) -> list:
    """The members of a stacked pytree as a list (``size``: how many there must be, checked)."""
    found = size_of(tree)
    if size is not None and size != found:
        raise ValueError(f"The stacked pytree holds {found} members, not {size}.")
    return [member(tree, i) for i in range(found)]
