"""Pruning a model's plan to the outputs asked for: ``model.apply(..., outputs=["age"])``.

A graph pass: only the layer calls the requested outputs depend on are run
(and traced), so asking for one head of a multi-head model computes none of
the others. Plans are kept per request, as the model keeps its full one.
"""

from __future__ import annotations

from typing import Any

from dagjax._graph import collect_nodes


def requested(model: Any, outputs: Any) -> tuple[list, Any]:
    """``(plan, structure)`` for ``outputs``: one output name (its array comes back alone) or a list of
    names (a list comes back); ``plan`` holds ``model``'s ``(rng index, node)`` pairs those need.
    """
    names = [outputs] if isinstance(outputs, str) else list(outputs)
    by_name = dict(zip(model.output_names, model.outputs))
    unknown = [n for n in names if n not in by_name]
    if unknown or not names:
        raise ValueError(
            f"Model '{model.name}' was asked for outputs {names!r}; "
            f"{'it has no ' + repr(unknown) if unknown else 'name at least one'}. "
            f"Its outputs are {model.output_names}."
        )
    cache = model.__dict__.setdefault("_pruned_plans", {})
    key = tuple(names)
    if key not in cache:
        tensors = [by_name[n] for n in names]
        needed = {id(node) for node in collect_nodes(model.inputs, tensors)[0]}
        plan = [(index, node) for index, node in model._plan if id(node) in needed]
        cache[key] = (plan, tensors[0] if isinstance(outputs, str) else tensors)
    return cache[key]
