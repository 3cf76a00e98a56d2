"""``average``: one functional Model whose output is the weighted mean of its members' outputs.

The ensemble is an ordinary graph: new Inputs (the first member's names,
shapes and dtypes), every member called on them as a nested model, and one
:class:`WeightedAverage` per output. So ``predict``, ``compile`` /
``evaluate``, ``save`` and ``dj.load_model`` work on it as on any model, and
its params are ``{member_name: member_params}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from dagjax._graph import is_symbolic, map_structure
from dagjax._naming import unique_name
from dagjax.ensemble._layer import WeightedAverage, simplex_weights
from dagjax.ensemble._members import check_members, input_order
from dagjax.layers import Input
from dagjax.model import Model


def average(
    models: Sequence[Model], weights: Sequence[float] | None = None, name: str | None = None
) -> Model:
    """A Model computing ``sum_k weights[k] * models[k](x)``, output by output.

    ``weights``: one non-negative number per model, normalised to sum to one
    (``None``: uniform; :func:`fit_weights` finds good ones). The members must
    take the same inputs (paired by name when their input names agree, else by
    position) and return the same outputs (one, a list, or a dict with the same
    keys, of the same shapes). The ensemble takes the first member's input
    names and output names, so data and ``compile`` arguments written for a
    member fit it too.

    The members are nested in the ensemble as they are (``ensemble.get_layer(
    member.name) is member``). The ensemble's params and state are the
    members' own arrays as they are now, shared, not copied (JAX arrays never
    change): training a member afterwards, or the ensemble, leaves the other
    as it was, since a ``fit`` copies shared weights before updating its own.
    """
    models = check_members(models, "dj.ensemble.average")
    weights = simplex_weights([1.0] * len(models) if weights is None else weights)
    if len(weights) != len(models):
        raise ValueError(
            f"dj.ensemble.average got {len(weights)} weights for {len(models)} models; "
            "give one weight per model."
        )
    first = models[0]
    inputs = map_structure(lambda t: Input(batch_shape=t.shape, dtype=t.dtype, name=t.name), first.input)
    flat_inputs = list(jax.tree_util.tree_leaves(inputs, is_leaf=is_symbolic))
    outputs = [model(_member_inputs(first, model, flat_inputs)) for model in models]
    taken = {t.name for t in flat_inputs} | {model.name for model in models}
    averaged = _averaged(first, outputs, weights, taken)
    ensemble = Model(inputs, averaged, name=name if name is not None else unique_name("ensemble"))
    ensemble.restore_weights(*_members_weights(models), shared=True)
    return ensemble


def _member_inputs(first: Model, model: Model, flat_inputs: list) -> Any:
    """The ensemble's input tensors in ``model``'s order: a list, or the one tensor."""
    ordered = [flat_inputs[j] for j in input_order(first, model)]
    return ordered[0] if len(ordered) == 1 else ordered


def _averaged(first: Model, outputs: list, weights: tuple[float, ...], taken: set[str]) -> Any:
    """One WeightedAverage per output, named after the first member's output, in its output structure."""
    flat = [jax.tree_util.tree_leaves(out, is_leaf=is_symbolic) for out in outputs]
    names = sorted(first.output) if isinstance(first.output, dict) else first.output_names
    averaged = [
        WeightedAverage(weights, name=_free_name(name, taken))([member[i] for member in flat])
        for i, name in enumerate(names)
    ]
    if isinstance(first.output, dict):
        return dict(zip(names, averaged))
    return averaged[0] if is_symbolic(first.output) else averaged


def _free_name(wanted: str, taken: set[str]) -> str:
    """``wanted``, or ``wanted_average[_n]`` if an input or a member already has that name; then taken."""
    name, n = wanted, 0
    while name in taken:
        name = f"{wanted}_average" + (f"_{n}" if n else "")
        n += 1
    taken.add(name)
    return name


def _members_weights(models: list[Model]) -> tuple[dict, dict]:
    """``({member_name: params}, {member_name: state})``, members without any left out.

    Read through ``model.params`` / ``model.state``, which mark them as held
    elsewhere, so that a member's later ``fit`` copies them before its steps
    update buffers in place: the ensemble's arrays stay as they are.
    """
    params: dict = {}
    state: dict = {}
    for model in models:
        if model.params:
            params[model.name] = model.params
        if model.state:
            state[model.name] = model.state
    return params, state
