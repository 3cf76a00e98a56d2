"""``load``: an export file back as a callable, needing neither the model's code nor its layer classes.

Only ``jax.export.deserialize`` reads the program; the signature is checked
field by field, then against the program itself (its platforms, the shapes
and dtypes it takes and gives, its argument tree), so a file whose two parts
disagree is refused at load rather than failing, or misreading, at a call.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax

from dagjax.export._file import read_file
from dagjax.export._format import Signature, Spec, broken
from dagjax.export._loaded import ExportedModel
from dagjax.export._serialization import deserialize
from dagjax.export._trees import leaf_names


def _same_arrays(avals: Sequence[Any], specs: list[Spec]) -> bool:
    """Whether the program's arrays are the signature's: the same sizes, the same symbolic dimensions."""
    return len(avals) == len(specs) and all(
        aval.dtype == spec.dtype
        and len(aval.shape) == len(spec.shape)
        and all(d == e if isinstance(d, int) else str(d) == e for d, e in zip(aval.shape, spec.shape))
        for aval, spec in zip(avals, specs)
    )


def _same_trees(exported: jax.export.Exported, signature: Signature) -> bool:
    """Whether the program takes (the weights, if arguments, then) one array per input and gives a tuple."""
    weights = [signature.arguments[tree] for tree in sorted(signature.arguments)]
    n_in = len(signature.inputs) + sum(map(len, weights))
    n_out = len(signature.outputs)
    if exported.in_tree.num_leaves != n_in or exported.out_tree != jax.tree.structure(tuple(range(n_out))):
        return False
    try:
        args, kwargs = jax.tree.unflatten(exported.in_tree, range(n_in))
    except (TypeError, ValueError):  # not the (args, kwargs) pair every exported function takes
        return False
    if not isinstance(args, tuple) or kwargs != {} or len(args) != len(weights) + len(signature.inputs):
        return False
    named = [leaf_names(tree) == [s.name for s in specs] for tree, specs in zip(args, weights)]
    return all(named) and all(isinstance(x, int) for x in args[len(weights):])


def _checked_agreement(signature: Signature, exported: jax.export.Exported, path: str) -> None:
    """Refuse a file whose program does not take and give what its signature says."""
    weights = [s for tree in sorted(signature.arguments) for s in signature.arguments[tree]]
    if tuple(exported.platforms) != signature.platforms:
        raise broken(path, f"program for {exported.platforms}, signature for {signature.platforms}")
    if not _same_arrays(exported.in_avals, weights + signature.inputs):
        raise broken(path, "its program's inputs are not the ones its signature lists")
    if not _same_arrays(exported.out_avals, signature.outputs):
        raise broken(path, "its program's outputs are not the ones its signature lists")
    if not _same_trees(exported, signature):
        raise broken(path, "its program's arguments are not arranged as its signature says")


def load(filepath: str | os.PathLike) -> ExportedModel:
    """The model exported to ``filepath``, as a callable; a bad file is a ``dagjax.io.CheckpointError``."""
    path = os.fspath(filepath)
    signature, program = read_file(path)
    exported = deserialize(program, path)
    _checked_agreement(signature, exported, path)
    return ExportedModel(signature, exported)
