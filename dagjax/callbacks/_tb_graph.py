"""A model's layer graph as a TensorBoard ``GraphDef``, for the Graphs tab.

Each layer is one node named by its path (``encoder/dense``), so TensorBoard
draws a nested model as a group it can open, and a shared layer as one node
with an edge from every call. Nodes carry the layer's output shapes (shown on
the edges), its type, parameter count, number of calls and config.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dagjax.utils._layer_graph import GraphNode, layer_graph, layer_kind

if TYPE_CHECKING:
    from tensorboardX.proto.graph_pb2 import GraphDef

    from dagjax.model import Model


def node_name(path: tuple) -> str:
    """The GraphDef name of a layer path (a ``/`` inside a layer name would read as a group)."""
    return "/".join(part.replace("/", "_") for part in path)


def _shape_proto(shape: tuple) -> Any:
    from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto

    return TensorShapeProto(dim=[TensorShapeProto.Dim(size=-1 if d is None else d) for d in shape])


def _attrs(node: GraphNode) -> dict:
    from tensorboardX.proto.attr_value_pb2 import AttrValue

    shapes = AttrValue.ListValue(shape=[_shape_proto(s) for s in node.output_shapes])
    config = json.dumps(node.layer.get_config(), default=str, sort_keys=True)
    dtypes = ", ".join(dict.fromkeys(str(d) for d in node.output_dtypes))
    return {
        "_output_shapes": AttrValue(list=shapes),
        "dtype": AttrValue(s=dtypes.encode()),
        "params": AttrValue(i=node.layer.count_params()),
        "calls": AttrValue(i=node.calls),
        "config": AttrValue(s=config.encode()),
    }


def graph_def(model: Model) -> GraphDef:
    """The ``GraphDef`` of ``model``'s layers, nested models expanded into groups."""
    from tensorboardX.proto.graph_pb2 import GraphDef
    from tensorboardX.proto.node_def_pb2 import NodeDef
    from tensorboardX.proto.versions_pb2 import VersionDef

    nodes, edges = layer_graph(model, expand_nested=True)
    inputs: dict[tuple, list[str]] = {node.path: [] for node in nodes}
    for edge in edges:
        source = node_name(edge.source)
        inputs[edge.target].append(f"{source}:{edge.output}" if edge.output else source)
    return GraphDef(
        node=[
            NodeDef(name=node_name(n.path), op=layer_kind(n.layer), input=inputs[n.path], attr=_attrs(n))
            for n in nodes
        ],
        versions=VersionDef(producer=22),
    )
