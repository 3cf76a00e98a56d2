"""Keras masks through a graph: which tensors carry one, and their values inside ``apply``.

A Keras mask marks the real timesteps of a padded sequence (``(batch, time)``
bools). As in Keras, a layer with ``supports_masking`` gives its outputs the
mask ``compute_mask(inputs, mask)`` returns for its first argument and that
argument's mask (by default that mask, unchanged); a layer without it drops
the mask, with Keras's warning. Layers with ``uses_input_mask`` read the masks
of their arguments in ``apply(..., input_mask=...)`` (same structure as the
arguments, None where a tensor has none).

Which tensors carry a mask is decided when the graph is built (the
``output_masks`` specs of each ``Node``, traced abstractly as shapes are); at
run time the model computes just those masks, inside its one traced program.
"""

from __future__ import annotations

import warnings
import weakref
from typing import TYPE_CHECKING, Any

import jax

from dagjax._graph import Node, SymbolicTensor, flatten, is_symbolic, map_structure, mask_spec
from dagjax.layers._specs import PROBE_SIZES, TensorSpec, merge_probes, probe

if TYPE_CHECKING:
    from dagjax.layers._base import Layer

# Tensors whose mask a MultiHeadAttention call consumed: later calls on them see none (Keras's
# MultiHeadAttention clears the masks of its inputs). Calls recorded before keep theirs.
_CONSUMED: weakref.WeakSet = weakref.WeakSet()


def visible_mask(tensor: SymbolicTensor) -> Any:
    """The spec of the mask a call recorded now sees on ``tensor`` (None: none)."""
    return None if tensor in _CONSUMED else mask_spec(tensor)


def consumed(tensor: SymbolicTensor) -> bool:
    """Whether a MultiHeadAttention call hid ``tensor``'s mask from the calls recorded after it."""
    return tensor in _CONSUMED


def consume_masks(*tensors: Any) -> None:
    """Hide these tensors' masks from the calls recorded from now on, as Keras's MultiHeadAttention does."""
    _CONSUMED.update(t for t in tensors if is_symbolic(t))


def masked_inputs(args: Any, options: dict) -> frozenset:
    """Ids of the tensors among a call's arguments whose masks the call sees."""
    tensors = [t for t in flatten((args, options)) if is_symbolic(t)]
    return frozenset(id(t) for t in tensors if visible_mask(t) is not None)


def _leaves(tree: Any) -> list:
    """Leaves of a structure of masks, None included (one per tensor)."""
    return jax.tree_util.tree_leaves(tree, is_leaf=lambda x: x is None)


def has_mask(masks: Any) -> bool:
    """Whether a structure of masks (or mask specs) holds at least one."""
    return any(m is not None for m in _leaves(masks))


def output_mask_specs(layer: Layer, node: Node, specs: tuple, mask_of: Any = visible_mask) -> list | None:
    """Per output of ``node``, the spec of the mask it carries (None: none); None when no output has one.

    ``specs`` are the specs of ``node.args``. Traced abstractly, as output shapes are. ``mask_of(tensor)``:
    the mask spec the call sees on an argument (a nested model's inner calls see its inputs' masks).
    """
    first_masks = first_arg_masks(node, mask_of)
    given = has_mask(first_masks)
    if not layer.supports_masking:
        if given or mask_of is visible_mask:
            warn_if_dropped(layer, node, given)
        return None
    if not (given or layer.creates_mask):
        return None
    inputs = specs[0]
    unknown = any(None in s.shape for s in flatten((inputs, first_masks)) if s is not None)

    def trace(size: int) -> list:
        probes = jax.tree_util.tree_map(lambda s: probe(s, size), (inputs, first_masks))
        out = jax.eval_shape(lambda x, m: layer.compute_mask(x, m), *probes)
        return _aligned(out, len(node.output_tensors))

    first = trace(PROBE_SIZES[0])
    second = trace(PROBE_SIZES[1]) if unknown else first
    masks = [
        None if a is None else merge_probes(a, b) if unknown else TensorSpec(a.shape, a.dtype)
        for a, b in zip(first, second)
    ]
    return masks if any(m is not None for m in masks) else None


def first_arg_masks(node: Node, mask_of: Any = visible_mask) -> Any:
    """The mask specs the call sees on its first argument: an explicit ``mask=`` argument's, else flowed."""
    given = node.kwargs.get("mask")
    if given is not None:
        return map_structure(lambda t: TensorSpec(t.shape, t.dtype) if is_symbolic(t) else None, given)
    return map_structure(mask_of, node.args[0])


def call_mask_specs(args: tuple, options: dict) -> tuple:
    """The mask specs a call being recorded sees on its arguments: an explicit ``mask=`` for the first."""
    masks = tuple(map_structure(visible_mask, arg) for arg in args)
    given = options.get("mask")
    if given is None or not masks:
        return masks
    first = map_structure(lambda t: TensorSpec(t.shape, t.dtype) if is_symbolic(t) else None, given)
    return (first, *masks[1:])


def explicit_arg_masks(node: Node, values: dict) -> Any:
    """The arguments' masks at run time when the call was given ``mask=`` (Keras files record it), or None."""
    given = node.kwargs.get("mask")
    if given is None:
        return None
    first = map_structure(lambda t: values[id(t)] if is_symbolic(t) else None, given)
    return (first, *map_structure(lambda _: None, node.args[1:]))


def warn_if_dropped(layer: Layer, node: Node, given: bool = False) -> None:
    """Keras's warning when a layer that cannot take masks is called on a masked tensor."""
    if node.masked_inputs or given:
        warnings.warn(
            f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a mask "
            "attached to it. However, this layer does not support masking and will therefore destroy "
            "the mask information. Downstream layers will not see the mask.",
            UserWarning,
            stacklevel=5,
        )


def _aligned(masks: Any, count: int) -> list:
    """``compute_mask``'s result as one entry per output (Keras zips the flat outputs with the flat masks)."""
    flat = _leaves(masks)
    return (flat + [None] * count)[:count]


def run_arg_masks(node: Node, masks: dict, seen: frozenset | None = None) -> Any:
    """The mask arrays of ``node``'s arguments at run time: those it saw when recorded, None elsewhere.

    ``seen``: the ids of the arguments whose masks it reads, where they differ from the recorded ones
    (inside a nested model whose inputs carry masks).
    """
    seen = node.masked_inputs if seen is None else seen
    if not seen:
        return None
    return map_structure(lambda t: masks.get(id(t)) if id(t) in seen else None, node.args)


def input_mask_kwargs(layer: Layer, arg_masks: Any) -> dict:
    """``{"input_mask": arg_masks}`` for a layer that reads its inputs' masks and has some, else ``{}``."""
    return {"input_mask": arg_masks} if layer.uses_input_mask and has_mask(arg_masks) else {}


def run_output_masks(
    layer: Layer, node: Node, args: tuple, arg_masks: tuple, specs: list | None = None
) -> list:
    """The mask arrays of ``node``'s outputs (None where the graph gave an output none), at run time.

    ``specs``: the outputs' mask specs, where they differ from the recorded ones (a nested model's flow).
    """
    first_masks = arg_masks[0] if arg_masks else None
    masks = _aligned(layer.compute_mask(args[0], first_masks), len(node.output_tensors))
    specs = node.output_masks if specs is None else specs
    return [m if spec is not None else None for m, spec in zip(masks, specs)]
