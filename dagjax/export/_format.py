"""The export file: one zip of two stored members, and the JSON that describes the program in it.

- ``signature.json``: the format name and version, the model's name, the platforms, whether the
  weights are baked in or arguments, each input's and output's name, shape
  and dtype, with the outputs' structure (``single``, ``list`` or ``dict``),
  and the constraints the program assumes of the open sizes; for weights as
  arguments, each weight's path, shape and dtype too. A shape's open
  (symbolic) dimension is a string: ``"batch"``, ``"text_axis1"``, or for an
  output an expression of those, such as ``"text_axis1 - 4"``.
- ``program.bin``: the bytes of ``jax.export.Exported.serialize()``: the
  StableHLO program and the calling convention JAX needs to run it.

A file cannot run Python when it is loaded: the JSON is data, the program is
StableHLO that XLA compiles. Every field is checked here before it is used.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from dagjax.io import CheckpointError

FORMAT = "dagjax-export"
VERSION = 1
SIGNATURE = "signature.json"
PROGRAM = "program.bin"
STRUCTURES = ("single", "list", "dict")
WEIGHTS = ("constants", "arguments")


class Spec(NamedTuple):
    """One named array of the signature: ``shape`` has a symbol's name where any size goes (``"batch"``)."""

    name: str
    shape: tuple[int | str, ...]
    dtype: np.dtype


def spec_json(spec: Spec) -> dict:
    """``spec`` as the JSON stores it."""
    return {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype.name}


def describe(
    name: str,
    platforms: tuple[str, ...],
    weights: str,
    inputs: list[Spec],
    structure: str,
    outputs: list[Spec],
    arguments: dict[str, list[Spec]],
    constraints: tuple[str, ...],
) -> dict:
    """The signature's JSON data; ``arguments``: ``{"params": [...], "state": [...]}``, empty if baked in."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name,
        "platforms": list(platforms),
        "weights": weights,
        "inputs": [spec_json(s) for s in inputs],
        "outputs": {"structure": structure, "items": [spec_json(s) for s in outputs]},
        "arguments": {tree: [spec_json(s) for s in specs] for tree, specs in arguments.items()},
        "constraints": list(constraints),
    }


class Signature(NamedTuple):
    """The checked contents of ``signature.json``."""

    name: str  # the model's
    platforms: tuple[str, ...]
    weights: str
    inputs: list[Spec]
    structure: str
    outputs: list[Spec]
    arguments: dict[str, list[Spec]]  # for weights as arguments: "params" and "state", by weight path
    constraints: tuple[str, ...]  # what the program assumes of the open sizes, in jax.export's terms


def broken(path: str, what: str) -> CheckpointError:
    """The error for a file that is damaged or was not written by dagjax's export."""
    return CheckpointError(
        f"'{path}' is not a complete dagjax export: {what}. It may be truncated, corrupted or not "
        "written by model.export; export the model again."
    )


def _spec(item: Any, path: str, where: str) -> Spec:
    """The spec ``item`` describes, every field checked."""
    if not isinstance(item, dict):
        raise broken(path, f"{where} is not an object")
    name, shape, dtype = item.get("name"), item.get("shape"), item.get("dtype")
    if not isinstance(name, str):
        raise broken(path, f"{where} has no name")
    if not isinstance(shape, list) or not all(_dimension(d) for d in shape):
        raise broken(path, f"{where} ('{name}') has no valid shape")
    try:
        checked = np.dtype(jnp.dtype(dtype)) if isinstance(dtype, str) else None
    except (TypeError, ValueError):
        checked = None
    if checked is None:
        raise broken(path, f"{where} ('{name}') has no valid dtype")
    return Spec(name, tuple(shape), checked)


def _dimension(d: Any) -> bool:
    """Whether ``d`` is a dimension: a size, or a symbolic one's name or expression."""
    return (type(d) is int and d >= 0) or (isinstance(d, str) and bool(d))


def _specs(items: Any, path: str, where: str) -> list[Spec]:
    """A list of specs with unique names."""
    if not isinstance(items, list):
        raise broken(path, f"its {where} are not a list")
    specs = [_spec(item, path, f"{where} entry {i}") for i, item in enumerate(items)]
    if len({s.name for s in specs}) != len(specs):
        raise broken(path, f"two of its {where} have the same name")
    return specs


def _checked_version(data: Any, path: str) -> None:
    """Refuse a file of another format, or of a format version this dagjax does not read."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"'{path}' is not a dagjax export: its {SIGNATURE} does not say format '{FORMAT}'. "
            "(A file from model.save loads with dj.load_model.)"
        )
    version = data.get("version")
    if version != VERSION:
        newer = type(version) is int and version > VERSION
        raise CheckpointError(
            f"'{path}' is a dagjax export of format version {version!r}; this dagjax reads version "
            f"{VERSION}" + (". Upgrade dagjax to load it." if newer else ", so export the model again.")
        )


def read_signature(data: Any, path: str) -> Signature:
    """The :class:`Signature` the parsed JSON ``data`` describes, every field checked."""
    _checked_version(data, path)
    name = data.get("name")
    if not isinstance(name, str):
        raise broken(path, "it names no model")
    platforms = data.get("platforms")
    if not isinstance(platforms, list) or not platforms or not all(isinstance(p, str) for p in platforms):
        raise broken(path, "its platforms are not a list of names")
    weights = data.get("weights")
    if weights not in WEIGHTS:
        raise broken(path, f"its weights are {weights!r}, not one of {WEIGHTS}")
    outputs = data.get("outputs")
    if not isinstance(outputs, dict) or outputs.get("structure") not in STRUCTURES:
        raise broken(path, f"its outputs have no structure among {STRUCTURES}")
    arguments = data.get("arguments")
    trees = {"params", "state"} if weights == "arguments" else set()
    if not isinstance(arguments, dict) or set(arguments) != trees:
        raise broken(path, "its weight arguments do not match its weights entry")
    constraints = data.get("constraints")
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        raise broken(path, "its constraints are not a list of strings")
    return Signature(
        name,
        tuple(platforms),
        weights,
        _specs(data.get("inputs"), path, "inputs"),
        outputs["structure"],
        _specs(outputs.get("items"), path, "outputs"),
        {tree: _specs(arguments[tree], path, f"{tree} arguments") for tree in sorted(arguments)},
        tuple(constraints),
    )
