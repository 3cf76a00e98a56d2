"""Keras masks into a nested model: its inner calls re-planned for masked inputs.

A model's nodes record, when its graph is built, which argument masks each
call reads and which masks its outputs carry (``layers._mask_flow``). Its
``Input`` tensors carry none then. Called inside another model on tensors
that carry masks, Keras passes those masks to the nested model's inputs, and
its layers see them. dagjax plans that flow once per pattern of masked
inputs: a :class:`MaskPlan` holds, for each inner node, what its recorded
fields would hold had the inputs carried these masks, and the model runs on
the plan instead of the recorded fields.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from dagjax._graph import flatten, is_symbolic
from dagjax.layers import TensorSpec
from dagjax.layers._mask_flow import consumed


class MaskPlan(NamedTuple):
    """The mask flow inside a model for one pattern of masked inputs."""

    seen: dict  # id(node) -> ids of its argument tensors whose masks it reads
    output_masks: dict  # id(node) -> per output, the spec of its mask (None: none); None when none has one
    outputs: list  # per model output tensor, the spec of its mask (None: none)


def plan_masks(model: Any, input_specs: list) -> MaskPlan:
    """The flow inside ``model`` when its inputs (in ``model.inputs`` order) carry these mask specs."""
    spec_of = {id(t): s for t, s in zip(model.inputs, input_specs) if s is not None}
    seen: dict = {}
    output_masks: dict = {}
    for _, node in model._plan:
        tensors = [t for t in flatten((node.args, node.kwargs)) if is_symbolic(t)]
        reads = frozenset(
            id(t) for t in tensors
            if spec_of.get(id(t)) is not None and (id(t) in node.masked_inputs or not consumed(t))
        )
        mask_of = lambda t, reads=reads: spec_of.get(id(t)) if id(t) in reads else None
        arg_specs = jax.tree_util.tree_map(_spec, node.args, is_leaf=is_symbolic)
        made = node.layer.output_mask_specs(node, arg_specs, mask_of)
        seen[id(node)], output_masks[id(node)] = reads, made
        for tensor, spec in zip(node.output_tensors, made or ()):
            if spec is not None:
                spec_of[id(tensor)] = spec
    return MaskPlan(seen, output_masks, [spec_of.get(id(t)) for t in model.outputs])


def _spec(tensor: Any) -> Any:
    return TensorSpec(tensor.shape, tensor.dtype) if is_symbolic(tensor) else tensor
