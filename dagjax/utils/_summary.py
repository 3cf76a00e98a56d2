"""``model.summary()``: one row per layer, as Keras prints it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _format_count(n: int) -> str:
    size = n * 4.0
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{n:,} ({size:.2f} {unit})"
        size /= 1024
    raise AssertionError  # unreachable: the loop returns at "GB"


def _weight_counts(model) -> tuple[int, int]:
    trainable = non_trainable = 0
    for layer in model.sublayers.values():
        for collection, path in layer.weight_paths():
            spec_owner, name = layer, path[-1]
            for key in path[:-1]:
                spec_owner = spec_owner.sublayers[key]
            shape = next(w.shape for w in spec_owner.weight_specs if w.name == name)
            frozen = not layer.trainable or collection == "state"
            size = int(np.prod(shape))
            if frozen:
                non_trainable += size
            else:
                trainable += size
    return trainable, non_trainable


def _rows(model) -> list[tuple[str, str, str, str]]:
    in_model = {id(n) for n in model._nodes}
    rows = []
    for layer in model.layers:
        nodes = [n for n in layer._inbound_nodes if id(n) in in_model] or layer._inbound_nodes[:1]
        shapes = []
        sources = []
        for node in nodes:
            shapes.extend(str(t.shape) for t in node.output_tensors)
            for t in node.input_tensors:
                index = t.node.layer._inbound_nodes.index(t.node)
                sources.append(f"{t.node.layer.name}[{index}][{t.index}]")
        kind = type(layer).__name__
        if len(nodes) > 1:
            kind += f", shared x{len(nodes)}"
        rows.append(
            (
                f"{layer.name} ({kind})",
                ", ".join(dict.fromkeys(shapes)),
                f"{layer.count_params():,}",
                ", ".join(sources) or "-",
            )
        )
    return rows


def summary(model, print_fn: Callable = print, line_length: int | None = None) -> None:
    """Print the layer table and the parameter totals of ``model``."""
    header = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    rows = _rows(model)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    if line_length:
        widths[3] = max(12, line_length - sum(widths[:3]) - 13)
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
    print_fn("\n".join(lines))
