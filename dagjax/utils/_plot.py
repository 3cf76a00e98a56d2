"""``plot_model`` / ``model_to_dot``: the layer graph as Graphviz DOT, and as an image.

The DOT source is built here as text (no pydot), in the style of Keras 3's
plot: one box per layer with its name, type and (optionally) shapes, dtype,
activation and trainability; nested models collapse to one box, or with
``expand_nested`` open into dashed clusters. A shared layer is one box, with
an edge from each of its calls and ``shared xN`` in its title. ``.dot`` /
``.gv`` files need nothing else; images (PNG, SVG, PDF, ...) are rendered by
Graphviz's ``dot`` program.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from dagjax.utils._layer_graph import GraphNode, layer_graph, layer_kind

if TYPE_CHECKING:
    from dagjax.model import Model

_SOURCE_FORMATS = ("dot", "gv")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _shapes(shapes: list) -> str:
    """One shape as ``(None, 8)``, several as a list."""
    text = [str(tuple(s)) for s in shapes]
    return text[0] if len(text) == 1 else "[" + ", ".join(text) + "]"


def _call_shapes(calls: list) -> str:
    """The input shapes of each call, once per distinct pattern."""
    return ", ".join(dict.fromkeys(_shapes(shapes) for shapes in calls)) or "?"


def _cell(text: str, color: str = "white", font: str = "black") -> str:
    return f'<td bgcolor="{color}"><font point-size="14" color="{font}">{text}</font></td>'


def _label(
    node: GraphNode, show_shapes, show_dtype, show_layer_names, show_activations, show_trainable
) -> str:
    layer = node.layer
    kind = layer_kind(layer) + (f", shared x{node.calls}" if node.calls > 1 else "")
    title = f"<b>{html.escape(layer.name)}</b> ({kind})" if show_layer_names else f"<b>{kind}</b>"
    cells = []
    if show_shapes:
        if kind != "InputLayer":
            cells.append(_cell(f"Input shape: <b>{html.escape(_call_shapes(node.input_shapes))}</b>"))
        outputs = _call_shapes([[s] for s in node.output_shapes])
        cells.append(_cell(f"Output shape: <b>{html.escape(outputs)}</b>"))
    if show_dtype:
        dtypes = ", ".join(dict.fromkeys(str(d) for d in node.output_dtypes)) or "?"
        cells.append(_cell(f"Output dtype: <b>{dtypes}</b>"))
    if show_trainable and layer.count_params():
        cells.append(
            _cell("<b>Trainable</b>", "forestgreen", "white")
            if layer.trainable
            else _cell("<b>Non-trainable</b>", "firebrick", "white")
        )
    span = max(1, len(cells))
    heading = f'<font point-size="16" color="white">{title}</font>'
    rows = [f'<tr><td colspan="{span}" bgcolor="black">{heading}</td></tr>']
    activation = getattr(layer, "activation", None)
    if show_activations and activation is not None:
        name = html.escape(getattr(activation, "__name__", str(activation)))
        text = f'<font point-size="14">Activation: <b>{name}</b></font>'
        rows.append(f'<tr><td colspan="{span}" bgcolor="white">{text}</td></tr>')
    if cells:
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">' + "".join(rows) + "</table>>"


def model_to_dot(
    model: Model,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    splines: str = "ortho",
) -> str:
    """The model's layer graph as Graphviz DOT source (Keras's arguments; a string, not a pydot object)."""
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f'rankdir must be "TB", "LR", "BT" or "RL", got {rankdir!r}.')
    nodes, edges = layer_graph(model, expand_nested=expand_nested)
    options = (show_shapes, show_dtype, show_layer_names, show_layer_activations, show_trainable)
    lines = [
        f"digraph {_quote(model.name)} {{",
        f"  graph [rankdir={rankdir}, concentrate=true, dpi={int(dpi)}, splines={_quote(splines)}];",
        '  graph [fontname="Helvetica"];',
        '  node [shape=plaintext, fontname="Helvetica", margin=0];',
    ]
    lines += _cluster((), nodes, options, depth=1)
    pairs = dict.fromkeys(("/".join(e.source), "/".join(e.target)) for e in edges)
    lines += [f"  {_quote(source)} -> {_quote(target)} [penwidth=2];" for source, target in pairs]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster(prefix: tuple, nodes: list[GraphNode], options: tuple, depth: int) -> list[str]:
    """DOT lines for the nodes under ``prefix``, each nested model in its own dashed cluster."""
    pad = "  " * depth
    lines = []
    children: dict[str, None] = {}
    for node in nodes:
        if node.path[: len(prefix)] != prefix:
            continue
        if len(node.path) == len(prefix) + 1:
            lines.append(f"{pad}{_quote('/'.join(node.path))} [label={_label(node, *options)}];")
        else:
            children.setdefault(node.path[len(prefix)], None)
    for child in children:
        path = (*prefix, child)
        lines.append(f"{pad}subgraph {_quote('cluster_' + '/'.join(path))} {{")
        lines.append(f'{pad}  label={_quote(child)}; labeljust="l"; style="dashed";')
        lines += _cluster(path, nodes, options, depth + 1)
        lines.append(f"{pad}}}")
    return lines


def plot_model(
    model: Model,
    to_file: str | os.PathLike = "model.png",
    show_shapes: bool = True,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 96,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    splines: str = "ortho",
) -> str:
    """Write the model's graph to ``to_file`` (format from its extension) and return the DOT source.

    Defaults show shapes and layer names at 96 dpi (the chapter's usage);
    Keras 3's ``plot_model`` defaults to neither, at 200 dpi.

    ``.dot`` / ``.gv`` files are the DOT source itself; other formats (``png``,
    ``svg``, ``pdf``, ...) need Graphviz's ``dot`` program. Without it, the
    source is written next to ``to_file`` as ``.dot`` and ImportError says how
    to install Graphviz and render it.
    """
    source = model_to_dot(
        model,
        show_shapes=show_shapes,
        show_dtype=show_dtype,
        show_layer_names=show_layer_names,
        rankdir=rankdir,
        expand_nested=expand_nested,
        dpi=dpi,
        show_layer_activations=show_layer_activations,
        show_trainable=show_trainable,
        splines=splines,
    )
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:].lower() or "png"
    if extension in _SOURCE_FORMATS:
        with open(to_file, "w", encoding="utf-8") as f:
            f.write(source)
        return source
    program = shutil.which("dot")
    if program is None:
        fallback = os.path.splitext(to_file)[0] + ".dot"
        with open(fallback, "w", encoding="utf-8") as f:
            f.write(source)
        raise ImportError(
            f"plot_model needs Graphviz's `dot` program to write {to_file!r}, and it is not on the PATH. "
            "Install Graphviz (Debian/Ubuntu: `apt-get install graphviz`; macOS: `brew install graphviz`; "
            f"conda: `conda install graphviz`). The DOT source was written to {fallback!r}: render it with "
            f"`dot -T{extension} {fallback} -o {to_file}`, or pass to_file='model.dot' for the source only."
        )
    result = subprocess.run(
        [program, f"-T{extension}", "-o", to_file], input=source.encode(), capture_output=True, timeout=120
    )
    if result.returncode:
        raise ValueError(
            f"Graphviz could not write {to_file!r}: {result.stderr.decode(errors='replace').strip()}"
        )
    return source
