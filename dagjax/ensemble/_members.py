"""Checks that models can be ensembled: the same inputs, the same output structure and shapes.

Every check compares each member with the first and fails at once, naming
both models and the input or output that differs, with shapes and dtypes,
so that a mismatch surfaces when the ensemble is asked for, not inside a trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagjax._graph import is_symbolic
from dagjax.model import Model


def _spec(tensor: Any) -> str:
    return f"{tensor.shape} {tensor.dtype.name}"


def check_members(models: Sequence[Model], caller: str) -> list[Model]:
    """``models`` as a list, each a built dagjax Model that can be averaged with the first.

    ``caller`` names the public function in messages (``dj.ensemble.average``).
    """
    if isinstance(models, Model) or not isinstance(models, (list, tuple)):
        raise TypeError(
            f"{caller} takes a list of models, e.g. {caller}([model_a, model_b]); got {models!r:.80}."
        )
    models = list(models)
    if not models:
        raise ValueError(f"{caller} got an empty list of models; pass at least one.")
    for i, model in enumerate(models):
        if not isinstance(model, Model):
            kind = type(model).__name__
            raise TypeError(f"{caller} takes dagjax Models; models[{i}] is a {kind}: {model!r:.60}.")
        if not model.built:
            raise ValueError(
                f"{caller}: model '{model.name}' (models[{i}]) has no input shape yet; start it with "
                "dj.Input(shape=...) or call model.build((None, ...)) first."
            )
    _check_distinct_names(models, caller)
    first = models[0]
    for model in models[1:]:
        _check_inputs(first, model)
        _check_outputs(first, model)
    return models


def _check_distinct_names(models: list[Model], caller: str) -> None:
    """Different models need different names: the ensemble's params hold each member under its name."""
    seen: dict[str, int] = {}
    for i, model in enumerate(models):
        j = seen.setdefault(model.name, i)
        if j != i and models[j] is not model:
            raise ValueError(
                f"{caller}: models[{j}] and models[{i}] are different models both named '{model.name}'; "
                "the ensemble's params hold each member under its name. Give each member its own name, "
                f"e.g. dj.Model(inputs, outputs, name='{model.name}_{i}') (for a loaded model, set "
                f"models[{i}].name = '{model.name}_{i}')."
            )


def input_order(first: Model, model: Model) -> list[int]:
    """For each of ``model``'s inputs, the index of the ``first`` model's input that feeds it.

    Inputs pair by name when both models have the same input names, else by position.
    """
    if sorted(model.input_names) == sorted(first.input_names):
        return [first.input_names.index(name) for name in model.input_names]
    return list(range(len(model.inputs)))


def _check_inputs(first: Model, model: Model) -> None:
    """``model`` takes as many inputs as ``first``, each of the same shape and dtype as its pair."""
    if len(model.inputs) != len(first.inputs):
        raise ValueError(
            f"Ensemble members must take the same inputs: model '{first.name}' takes {len(first.inputs)}, "
            f"{first.input_names} of shapes {[t.shape for t in first.inputs]}; model '{model.name}' takes "
            f"{len(model.inputs)}, {model.input_names} of shapes {[t.shape for t in model.inputs]}."
        )
    for i, j in enumerate(input_order(first, model)):
        mine, theirs = model.inputs[i], first.inputs[j]
        if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
            raise ValueError(
                f"Ensemble members must take the same inputs: input '{model.input_names[i]}' of model "
                f"'{model.name}' is {_spec(mine)}, but input '{first.input_names[j]}' of model "
                f"'{first.name}' is {_spec(theirs)}."
            )


def output_kind(model: Model) -> str:
    """How ``model`` returns its outputs, in words: one output, a list of N, or a dict with its keys."""
    structure = model.output
    if is_symbolic(structure) or len(model.outputs) == 1 and isinstance(structure, (list, tuple)):
        return "one output"
    if isinstance(structure, dict):
        return f"a dict of outputs {sorted(structure)}"
    return f"a list of {len(structure)} outputs"


def _check_outputs(first: Model, model: Model) -> None:
    """``model`` returns its outputs as ``first`` does, each of the same shape and dtype."""
    if output_kind(model) != output_kind(first):
        raise ValueError(
            f"Ensemble members must return the same outputs: model '{first.name}' returns "
            f"{output_kind(first)}, model '{model.name}' returns {output_kind(model)}."
        )
    for i, (mine, theirs) in enumerate(zip(model.outputs, first.outputs)):
        if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
            raise ValueError(
                f"Ensemble members must return the same outputs: output '{model.output_names[i]}' of "
                f"model '{model.name}' is {_spec(mine)}, but output '{first.output_names[i]}' of model "
                f"'{first.name}' is {_spec(theirs)}."
            )
