"""Which candidate models can train together: the same program over the same weight shapes.

A population runs one model's program for all its members, so members may
differ in numbers the step reads as data (seeds, optimizer arguments, loss
weights, Dropout rates, L1/L2 factors), never in the graph.
:func:`architecture_key` says what a model's training program is, layer
names aside: its training-mode forward pass and weight penalty traced
(``jax.make_jaxpr``) on abstract weights (``jax.eval_shape``) given in Keras's
weight order, with every tunable value (``model.tunable()``) an input. Two
models built the same way, whatever their auto-generated names and Dropout
rates, get the same key; a different activation, width or layer order gives
another. :func:`tunable_hyperparams` then gives a group's per-member values
of those tunables, ready for a ``Population``'s ``hyperparams``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from dagjax.layers import flat_tunables
from dagjax.training.population._members import nested

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

    scalar = jax.ShapeDtypeStruct((), jnp.float32)
    tunables = nested({name: scalar for name in flat_tunables(model.tunable())})

    def forward(weights: list, xs: list, hyperparams: dict):
        params, state = _from_ordered(model, weights)
        key = jax.random.key(0)
        outputs = model.apply_with_penalty(params, state, xs, True, key, hyperparams=hyperparams)
        return outputs, model.weight_penalty(params, hyperparams)

    return str(jax.make_jaxpr(forward)(ordered, probes, tunables))


def group_by_architecture(models: Sequence[Model]) -> list[list[int]]:
    """The indices of ``models`` grouped by :func:`architecture_key`, groups in order of first appearance.

    Each group can train as one population (of its first model); a model
    alone in its group trains alone.
    """
    groups: dict[str, list[int]] = {}
    for index, model in enumerate(models):
        groups.setdefault(architecture_key(model), []).append(index)
    return list(groups.values())


def tunable_hyperparams(models: Sequence[Model]) -> dict[str, list[float]]:
    """Each tunable value of a group's models (one architecture), one per model, named as the first names it.

    ``{"dropout/rate": [0.1, 0.3]}`` for two models whose Dropout rates are
    0.1 and 0.3: a population of the first model with these ``hyperparams``
    trains each member as its own model would train.
    """
    keys = {architecture_key(model) for model in models}
    if len(keys) > 1:
        raise ValueError("These models are not one architecture: group them with group_by_architecture.")
    flats = [list(flat_tunables(model.tunable()).values()) for model in models]
    names = flat_tunables(models[0].tunable())
    return {name: [float(flat[i].value) for flat in flats] for i, name in enumerate(names)}
