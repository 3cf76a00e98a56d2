"""``model.summary()``: one row per layer, as Keras prints it.

A shared layer is one row marked ``shared xN``, listing the output shapes and
the sources of every call (``dense[1][0]`` is output 0 of the layer's call 1,
as Keras writes it). A nested model is one ``Functional`` (or ``Sequential``)
row; with ``expand_nested=True`` its layers follow, indented under it, with
their connections inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from dagjax.utils._layer_graph import is_model, layer_kind

if TYPE_CHECKING:
    from dagjax.model import Model


def _format_count(n: int) -> str:
    size = n * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{n:,} ({size:.2f} {unit})"
        size /= 1024
    raise AssertionError  # unreachable: the loop returns at "GB"


def _weight_counts(layer, parent_trainable: bool = True) -> tuple[int, int]:
    """``(trainable, non_trainable)`` weight counts; a frozen layer freezes everything under it."""
    trainable_layer = parent_trainable and layer.trainable
    trainable = non_trainable = 0
    for w in layer.weight_specs:
        size = int(np.prod(w.shape))
        if trainable_layer and w.trainable:
            trainable += size
        else:
            non_trainable += size
    for sub in layer.sublayers.values():
        t, n = _weight_counts(sub, trainable_layer)
        trainable, non_trainable = trainable + t, non_trainable + n
    return trainable, non_trainable


def _trainable_mark(layer) -> str:
    if not layer.count_params():
        return "-"
    return "Y" if layer.trainable else "N"


def _rows(model, depth: int, expand_nested: bool) -> list[tuple[str, ...]]:
    in_model = {id(n) for n in model.nodes}
    indent = "   " * depth + ("└ " if depth else "")
    rows = []
    for layer in model.operations:
        nodes = [n for n in layer.inbound_nodes if id(n) in in_model] or layer.inbound_nodes[:1]
        shapes = []
        sources = []
        for node in nodes:
            shapes.extend(str(t.shape) for t in node.output_tensors)
            for t in node.input_tensors:
                index = t.node.layer.inbound_nodes.index(t.node)
                sources.append(f"{t.node.layer.name}[{index}][{t.index}]")
        kind = layer_kind(layer)
        if len(nodes) > 1:
            kind += f", shared x{len(nodes)}"
        rows.append(
            (
                f"{indent}{layer.name} ({kind})",
                ", ".join(dict.fromkeys(shapes)),
                f"{layer.count_params():,}",
                ", ".join(sources) or "-",
                _trainable_mark(layer),
            )
        )
        if expand_nested and is_model(layer):
            rows.extend(_rows(layer, depth + 1, expand_nested))
    return rows


def summary(
    model: Model,
    line_length: int | None = None,
    print_fn: Callable | None = None,
    expand_nested: bool = False,
    show_trainable: bool = False,
) -> None:
    """Print the layer table and the parameter totals of ``model`` (Keras's arguments)."""
    header = ("Layer (type)", "Output Shape", "Param #", "Connected to", "Trainable")
    columns = 5 if show_trainable else 4
    rows = [r[:columns] for r in _rows(model, 0, expand_nested)]
    header = header[:columns]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(columns)]
    if line_length:
        widths[3] = max(12, line_length - sum(widths) + widths[3] - 3 * columns - 1)
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells):
        padded = [c.ljust(w) if i != 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    trainable, non_trainable = _weight_counts(model)
    lines = [f'Model: "{model.name}"', rule, line(header), rule.replace("-", "=")]
    lines += [line(r) for r in rows]
    lines += [
        rule,
        f" Total params: {_format_count(trainable + non_trainable)}",
        f" Trainable params: {_format_count(trainable)}",
        f" Non-trainable params: {_format_count(non_trainable)}",
    ]
    (print_fn or print)("\n".join(lines))
