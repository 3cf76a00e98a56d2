"""Which candidate models can train together: the same program over the same weight shapes.

A population runs one model's program for all its members, so members may
differ in numbers the step reads as data (seeds, optimizer arguments, loss
weights), never in the graph. :func:`architecture_key` says what a model's
training program is, layer names aside: its training-mode forward pass
traced (``jax.make_jaxpr``) on abstract weights (``jax.eval_shape``) given in
Keras's weight order. Two models built the same way, whatever their
auto-generated names, get the same key; a different activation, width,
Dropout rate or layer order gives another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax

if TYPE_CHECKING:
    from dagjax.model import Model

_PROBE_BATCH = 8


def _from_ordered(model: Model, weights: list) -> tuple[dict, dict]:
    """``(params, state)`` from weights listed in Keras's order (``model.weight_paths()``)."""
    trees: dict = {"params": {}, "state": {}}
    for (collection, path), value in zip(model.weight_paths(), weights):
        node = trees[collection]
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return trees["params"], trees["state"]


def architecture_key(model: Model) -> str:
    """The model's training program on a probe batch, as text free of layer names (see the module)."""
    params, state = jax.eval_shape(lambda: model.init_weights(jax.random.key(0)))
    trees = {"params": params, "state": state}
    ordered = []
    for collection, path in model.weight_paths():
        node = trees[collection]
        for key in path:
            node = node[key]
        ordered.append(node)
    sized = lambda shape: tuple(_PROBE_BATCH if d is None else d for d in shape)
    probes = [jax.ShapeDtypeStruct(sized(t.shape), t.dtype) for t in model.inputs]

    def forward(weights: list, xs: list):
        params, state = _from_ordered(model, weights)
        return model.apply(params, state, xs, training=True, rng=jax.random.key(0))

    return str(jax.make_jaxpr(forward)(ordered, probes))


def group_by_architecture(models: Sequence[Model]) -> list[list[int]]:
    """The indices of ``models`` grouped by :func:`architecture_key`, groups in order of first appearance.

    Each group can train as one population (of its first model); a model
    alone in its group trains alone.
    """
    groups: dict[str, list[int]] = {}
    for index, model in enumerate(models):
        groups.setdefault(architecture_key(model), []).append(index)
    return list(groups.values())
