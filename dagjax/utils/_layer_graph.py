"""The layer-level graph of a model: what plots and TensorBoard's Graphs tab draw.

One :class:`GraphNode` per layer, never per call: a shared layer is one node
with an edge in (and out) for each of its calls. With ``expand_nested``, a
nested model's layers become nodes under its name (path ``("encoder",
"dense")``), and an edge into or out of the nested model is resolved to its
InputLayer or to the layer that makes the output, as Keras's plot does.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dagjax._graph import flatten
from dagjax.layers._operation import Operation
from dagjax.model import Model


class GraphNode(NamedTuple):
    """A layer in the graph, with the shapes of its calls in its model."""

    path: tuple  # layer names from the top model down: ("encoder", "dense")
    layer: Any
    calls: int  # calls of the layer in its model; 2 or more: a shared layer
    input_shapes: list  # per call: the shapes of its input tensors
    output_shapes: list  # every output tensor's shape, call after call
    output_dtypes: list


class GraphEdge(NamedTuple):
    """A tensor from output ``output`` of node ``source`` into node ``target``."""

    source: tuple
    output: int  # index into the source node's ``output_shapes``
    target: tuple
    shape: tuple


def is_model(layer: Any) -> bool:
    """Whether ``layer`` is a model (functional or Sequential)."""
    return isinstance(layer, Model)


def layer_kind(layer: Any) -> str:
    """The type name Keras prints: ``Functional`` for a functional model, Keras's op class for an op."""
    if isinstance(layer, Operation):
        return layer.spec.keras_class
    name = type(layer).__name__
    return "Functional" if name == "Model" and is_model(layer) else name


def _tensors_of(model) -> dict[int, list]:
    """Per layer of ``model``: its output tensors (every call, in order)."""
    out: dict[int, list] = {id(layer): [] for layer in model.operations}
    for t in model.inputs:
        out[id(t.node.layer)].append(t)
    for node in model.nodes:
        out[id(node.layer)].extend(node.output_tensors)
    return out


class _Walk:
    def __init__(self, expand_nested: bool):
        self.expand = expand_nested
        self.nodes: list[GraphNode] = []
        self.edges: list[GraphEdge] = []
        self._positions: dict[int, dict[int, int]] = {}

    def position(self, model, tensor) -> int:
        """Index of ``tensor`` among the outputs of the layer (in ``model``) that made it."""
        if id(model) not in self._positions:
            self._positions[id(model)] = {
                id(t): i for tensors in _tensors_of(model).values() for i, t in enumerate(tensors)
            }
        return self._positions[id(model)][id(tensor)]

    def source(self, model, prefix: tuple, tensor) -> tuple[tuple, int]:
        """The node (and output index) that makes ``tensor``, looking inside nested models."""
        producer = tensor.node.layer
        if self.expand and is_model(producer):
            inner = flatten(producer.output)[tensor.index]
            return self.source(producer, (*prefix, producer.name), inner)
        return (*prefix, producer.name), self.position(model, tensor)

    def target(self, layer, position: int, path: tuple) -> tuple:
        """The node an input of ``layer`` goes to: a nested model's InputLayer when expanding."""
        if self.expand and is_model(layer):
            return (*path, layer.inputs[position].node.layer.name)
        return path

    def walk(self, model, prefix: tuple) -> None:
        tensors = _tensors_of(model)
        calls: dict[int, list] = {id(layer): [] for layer in model.operations}
        for node in model.nodes:
            calls[id(node.layer)].append(node)
        for layer in model.operations:
            path = (*prefix, layer.name)
            if self.expand and is_model(layer):
                self.walk(layer, path)
                continue
            outputs = tensors[id(layer)]
            self.nodes.append(
                GraphNode(
                    path,
                    layer,
                    max(1, len(calls[id(layer)])),
                    [[t.shape for t in node.input_tensors] for node in calls[id(layer)]],
                    [t.shape for t in outputs],
                    [t.dtype for t in outputs],
                )
            )
        for node in model.nodes:
            layer = node.layer
            path = (*prefix, layer.name)
            inputs = (
                layer.flat_inputs(node.args[0], symbolic=True)
                if self.expand and is_model(layer)
                else node.input_tensors
            )
            for position, tensor in enumerate(inputs):
                source, output = self.source(model, prefix, tensor)
                self.edges.append(GraphEdge(source, output, self.target(layer, position, path), tensor.shape))


def layer_graph(model: Model, expand_nested: bool = True) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Nodes (InputLayers first, then Keras's layer order) and edges of ``model``'s layer graph."""
    walk = _Walk(expand_nested)
    walk.walk(model, ())
    return walk.nodes, walk.edges
