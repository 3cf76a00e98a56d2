"""A model between intermediate tensors: ``Model(x2, outputs)`` where ``x2`` is some layer's output.

As Keras's ``clone_graph_nodes``: each given input that is not an ``Input``
tensor is replaced by a new ``Input`` of its shape and dtype, and the calls
between the inputs and the outputs are recorded again on the new tensors,
with the same layers (so the sub-model shares their weights, as Keras's).
"""

from __future__ import annotations

from typing import Any

from dagjax._graph import collect_nodes, flatten, is_symbolic, map_structure, run_order
from dagjax.layers import Input


def on_own_inputs(inputs: Any, outputs: Any) -> tuple[Any, Any]:
    """``(inputs, outputs)`` with every intermediate input an ``Input`` of its own, the calls replayed."""
    given = [t for t in flatten(inputs) if is_symbolic(t)]
    if all(t.node.is_input for t in given):
        return inputs, outputs
    new = {id(t): t if t.node.is_input else Input(batch_shape=t.shape, dtype=t.dtype) for t in given}
    nodes, _ = collect_nodes(given, [t for t in flatten(outputs) if is_symbolic(t)])
    swap = lambda t: new.get(id(t), t) if is_symbolic(t) else t
    for node in run_order(nodes):
        if node.is_input:
            continue
        replayed = node.layer.record_call(map_structure(swap, node.args), map_structure(swap, node.kwargs))
        new.update((id(old), fresh) for old, fresh in zip(node.output_tensors, flatten(replayed)))
    return map_structure(swap, inputs), map_structure(swap, outputs)
