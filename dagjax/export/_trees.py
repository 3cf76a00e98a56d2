"""Weight trees as flat lists of named specs, the form the signature lists and checks them in."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from dagjax.export._format import Spec


def _key_name(key: Any) -> str:
    """One step of a pytree path as a name: a dict key, a sequence index or an attribute."""
    for field in ("key", "idx", "name"):
        if hasattr(key, field):
            return str(getattr(key, field))
    return str(key)


def leaf_names(tree: Any) -> list[str]:
    """``"dense/kernel"``-style names of ``tree``'s leaves, in JAX's flattening order."""
    paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    return ["/".join(_key_name(k) for k in path) for path, _ in paths]


def tree_specs(tree: Any) -> list[Spec]:
    """The named shape and dtype of each leaf of ``tree`` (arrays, or anything with shape and dtype)."""
    leaves = jax.tree_util.tree_leaves(tree)
    return [Spec(name, tuple(x.shape), np.dtype(x.dtype)) for name, x in zip(leaf_names(tree), leaves)]
