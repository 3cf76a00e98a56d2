"""Pytrees laid on a distribution's mesh: weights by their paths' layouts, optimizer state like its weights.

A weight's path joins its keys in the parameter tree with ``/``
(``"dense/kernel"``, ``"encoder/dense/kernel"``), as Keras's variable paths
do. An optimizer state leaf takes the layout of the weight whose path ends
its own key path with the same shape (Adam's ``mu``/``nu``), else is replicated
(counts, learning rates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.sharding import NamedSharding

if TYPE_CHECKING:
    from dagjax.distribution import Distribution


def _path(key_path: tuple) -> tuple[str, ...]:
    """The dict keys (and attribute names) along a key path, as strings."""
    names = []
    for key in key_path:
        name = getattr(key, "key", getattr(key, "name", None))
        if name is not None:
            names.append(str(name))
    return tuple(names)


def _checked(dist: Distribution, path: str, shape: tuple) -> NamedSharding:
    """The sharding of the weight at ``path``, refused with its name if its layout cannot split ``shape``."""
    layout = dist.get_variable_layout(path, shape)
    if layout.device_mesh is None:
        layout.device_mesh = dist.device_mesh
    if len(layout.axes) != len(shape):
        raise ValueError(
            f"Layout {layout.axes} for weight '{path}' has {len(layout.axes)} axes; its shape {shape} "
            f"has {len(shape)} dimensions."
        )
    sizes = dict(zip(layout.device_mesh.axis_names, layout.device_mesh.shape))
    for dim, axis in zip(shape, layout.axes):
        if axis is not None and dim % sizes[axis]:
            raise ValueError(
                f"Weight '{path}' of shape {shape} cannot be split as {layout.axes}: {dim} is not a "
                f"multiple of mesh axis '{axis}' ({sizes[axis]} devices)."
            )
    return layout.backend_layout


def weight_shardings(dist: Distribution, tree: Any) -> Any:
    """A tree of ``NamedSharding`` like ``tree`` (params or state): each leaf by its path's layout."""
    return jax.tree_util.tree_map_with_path(
        lambda kp, leaf: _checked(dist, "/".join(_path(kp)), tuple(np.shape(leaf))), tree
    )


def state_shardings(dist: Distribution, opt_state: Any, params: Any, param_shardings: Any) -> Any:
    """Shardings for an optimizer state: a leaf that mirrors a weight (same path ending and shape) shares
    its layout."""
    by_path = {}
    for (kp, leaf), sharding in zip(
        jax.tree_util.tree_flatten_with_path(params)[0], jax.tree_util.tree_leaves(param_shardings)
    ):
        by_path[_path(kp)] = (tuple(np.shape(leaf)), sharding)

    def pick(kp: tuple, leaf: Any) -> NamedSharding:
        names, shape = _path(kp), tuple(np.shape(leaf))
        for start in range(len(names)):
            found = by_path.get(names[start:])
            if found is not None and found[0] == shape:
                return found[1]
        return dist.replicated()

    return jax.tree_util.tree_map_with_path(pick, opt_state)


def place(tree: Any, shardings: Any) -> Any:
    """``tree`` laid out as ``shardings``; arrays already so placed are kept as they are.

    In a multi-process run every process gives the same values, and each
    puts only its own devices' shards (from the host, so no one device holds it all).
    """
    if jax.process_count() > 1:

        def put(value: Any, sharding: NamedSharding) -> Any:
            if isinstance(value, jax.Array) and value.sharding == sharding:
                return value
            return jax.device_put(np.asarray(value), sharding)

        return jax.tree_util.tree_map(put, tree, shardings)
    return jax.device_put(tree, shardings)
