"""``export_model``: a model's inference function as a StableHLO program, with its signature, in one file.

The function is ``model.apply(..., training=False)`` with its outputs
flattened in ``model.output_names`` order, lowered by ``jax.export`` for the
chosen platforms with every unknown (``None``) dimension symbolic: the batch
(one symbol, ``batch``, shared by all inputs) and any other
(``<input>_axis<k>``), so one file serves every batch size. The weights are
baked into the program as constants, or (``params_as_argument=True``) become
its first two arguments.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax

from dagjax.export._file import write_file
from dagjax.export._format import Spec, describe
from dagjax.export._serialization import serialize
from dagjax.export._trees import tree_specs

if TYPE_CHECKING:
    from dagjax.model import Model

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")  # the platform names jax.export lowers for


def _checked_format(format: str) -> None:
    """Refuse Keras's other export formats, saying what dagjax writes instead."""
    if format != "jax":
        raise ValueError(
            f"dagjax cannot export format={format!r}: it writes its own format, 'jax' (the inference "
            "function as StableHLO through jax.export, loaded with dagjax.export.load). For a TensorFlow "
            "SavedModel, ONNX or OpenVINO, build the same model in Keras, give it this model's "
            "get_weights() with set_weights, and use Keras's export."
        )


def checked_platforms(platforms: str | Sequence[str] | None) -> tuple[str, ...]:
    """The platforms to lower for: those given (one name or several), or this process's default backend's."""
    if platforms is None:
        return (jax.export.default_export_platform(),)
    names = (platforms,) if isinstance(platforms, str) else tuple(platforms)
    unknown = [p for p in names if p not in PLATFORMS]
    if not names or unknown:
        hint = " (for NVIDIA GPUs say 'cuda', for AMD 'rocm')" if "gpu" in unknown else ""
        raise ValueError(
            f"Cannot export for platforms {names!r}: give one or more of {PLATFORMS}{hint}, such as "
            "platforms=('cpu', 'cuda')."
        )
    return tuple(dict.fromkeys(names))


def _symbol(name: str, taken: set) -> str:
    """An identifier for input ``name`` that jax.export's dimension parser reads, unique among ``taken``."""
    ident = re.sub(r"\W", "_", name)
    ident = ident if ident[:1].isalpha() else f"input_{ident}"
    while ident in taken:
        ident += "_"
    taken.add(ident)
    return ident


def dimension_names(model: Model) -> list[list[str]]:
    """Each input's dimensions as jax.export reads them: a size, ``batch``, or ``<input>_axis<k>``."""
    taken: set = {"batch"}
    names = []
    for name, tensor in zip(model.input_names, model.inputs):
        ident = _symbol(name, taken)
        names.append([
            str(size) if size is not None else ("batch" if axis == 0 else f"{ident}_axis{axis}")
            for axis, size in enumerate(tensor.shape)
        ])
    return names


def _symbolic_inputs(model: Model, constraints: Sequence[str]) -> list[jax.ShapeDtypeStruct]:
    """Each input's shape and dtype, its ``None`` dimensions symbolic (the batch shared by all inputs)."""
    scope = jax.export.SymbolicScope(tuple(constraints))
    return [
        jax.ShapeDtypeStruct(jax.export.symbolic_shape(", ".join(dims), scope=scope) if dims else (), t.dtype)
        for dims, t in zip(dimension_names(model), model.inputs)
    ]


def _inconclusive(model: Model, err: Exception) -> ValueError:
    """The error for a model whose program depends on the size of a dimension left open."""
    open_dims = list(dict.fromkeys(d for dims in dimension_names(model) for d in dims if not d.isdigit()))
    example = f"{open_dims[-1]} >= 8"
    return ValueError(
        f"Model '{model.name}' cannot be exported for every size of its open (None) dimensions "
        f"({', '.join(open_dims)}): {str(err).splitlines()[0]} "
        f"Give the sizes it needs as constraints, such as constraints=('{example}',), or build the "
        "model with fixed sizes."
    )


def _structure(model: Model) -> str:
    """How ``apply`` gives the outputs back: one array (also for a list of one), a list, or a dict."""
    if isinstance(model.output, dict):
        return "dict"
    return "list" if isinstance(model.output, (list, tuple)) and len(model.output) > 1 else "single"


def _inference(model: Model, structure: str, params_as_argument: bool) -> Callable:
    """The function to lower: inputs (after the weights, if they are arguments) -> a tuple of outputs."""
    names = model.output_names

    def run(params: dict, state: dict, *inputs: Any) -> tuple:
        outputs, _ = model.apply(params, state, list(inputs), training=False)
        if structure == "dict":
            return tuple(outputs[name] for name in names)
        return tuple(outputs) if structure == "list" else (outputs,)

    if params_as_argument:
        function = run
    else:
        params, state = model.weights_view()
        function = lambda *inputs: run(params, state, *inputs)
    function.__name__ = model.name  # jax.export's messages name the function: let them name the model
    return function


def _specs(names: list[str], avals: Sequence[Any]) -> list[Spec]:
    """Named specs of the program's arrays; a symbolic dimension is named by its expression."""
    return [
        Spec(name, tuple(d if isinstance(d, int) else str(d) for d in aval.shape), aval.dtype)
        for name, aval in zip(names, avals)
    ]


def export_model(
    model: Model,
    filepath: str | os.PathLike,
    format: str = "jax",
    *,
    platforms: str | Sequence[str] | None = None,
    params_as_argument: bool = False,
    constraints: Sequence[str] = (),
) -> None:
    """Write ``model``'s inference function to ``filepath`` (atomically) for :func:`dagjax.export.load`.

    ``platforms``: ``"cpu"``, ``"cuda"``, ``"rocm"``, ``"tpu"`` or several, such as
    ``("cpu", "cuda")``; by default this process's backend. ``params_as_argument``:
    the loaded function takes ``params=`` and ``state=`` instead of holding the
    model's current weights. ``constraints``: what the program may assume of
    the open sizes, in jax.export's terms, such as ``("text_axis1 >= 5",)``
    (the batch is ``batch``, another open axis ``<input name>_axis<k>``).
    """
    _checked_format(format)
    if not model.input_names:
        raise ValueError(
            f"Model '{model.name}' has no input shape yet, so there is nothing to export: build it first "
            "(start it with dj.Input(shape=...), or call build(input_shape) or predict)."
        )
    lowered_for = checked_platforms(platforms)
    structure = _structure(model)
    inputs = _symbolic_inputs(model, constraints)
    arguments: dict[str, list[Spec]] = {}
    weights: tuple = ()
    if params_as_argument:
        abstract = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype)
        weights = jax.tree.map(abstract, model.weights_view())
        arguments = {"params": tree_specs(weights[0]), "state": tree_specs(weights[1])}
    function = jax.jit(_inference(model, structure, params_as_argument))
    try:
        exported = jax.export.export(function, platforms=lowered_for)(*weights, *inputs)
    except jax.errors.InconclusiveDimensionOperation as err:
        raise _inconclusive(model, err) from err
    signature = describe(
        model.name,
        lowered_for,
        "arguments" if params_as_argument else "constants",
        _specs(model.input_names, exported.in_avals[len(exported.in_avals) - len(inputs):]),
        structure,
        _specs(model.output_names, exported.out_avals),
        arguments,
        tuple(constraints),
    )
    write_file(filepath, signature, serialize(exported))
