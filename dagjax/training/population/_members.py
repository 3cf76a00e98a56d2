"""Each member's scalar hyperparameters: given as one list per name, checked, split by who reads them.

``hyperparams`` maps a name to one value per member. ``"seed"`` seeds a
member's initial weights, its Dropout rngs and its data shuffles (as
``model.init(jax.random.key(seed))`` and ``compile(seed=seed)`` do);
``"loss_weights"`` takes one entry per member in any form ``compile``'s
``loss_weights`` takes; a name with a ``/`` is a layer's value that a step
can take traced (``"dropout/rate"``, ``"dense/kernel/l2"``,
``"encoder/dropout/rate"``: the paths ``model.tunable()`` lists); every
other name is a numeric argument of the optimizer (``learning_rate``,
``beta_1``, ``momentum``...), kept in its state.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from dagjax.layers import Tunable
from dagjax.training.core import resolve_objective

_SEED_RANGE = 2**31


class Members(NamedTuple):
    """The population's per-member values, checked: ``size`` members, one entry of each per member."""

    size: int
    seeds: list[int]
    loss_weights: np.ndarray  # (size, outputs) float32
    optimizer: dict[str, np.ndarray]  # optimizer argument name -> (size,) float32
    layers: dict[str, np.ndarray]  # tunable path ("dropout/rate") -> (size,) float32


def _size(hyperparams: Mapping[str, Sequence], size: int | None) -> int:
    """The population size: ``size``, or the lists' common length; each list checked against it."""
    lengths = {}
    for name, values in hyperparams.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(
                f"hyperparams[{name!r}] must be a list with one value per member, got {values!r}."
            )
        lengths[name] = len(values)
    if size is None:
        if not lengths:
            raise ValueError("Give the population a size, or hyperparams with one value per member.")
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{name!r} has {n}" for name, n in lengths.items())
            raise ValueError(f"hyperparams need one value per member, but their lists differ: {listed}.")
        size = next(iter(lengths.values()))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"A population needs at least one member: size must be an int >= 1, got {size!r}.")
    wrong = {name: n for name, n in lengths.items() if n != size}
    if wrong:
        listed = ", ".join(f"{name!r} has {n}" for name, n in wrong.items())
        raise ValueError(f"hyperparams need one value per member ({size} members): {listed}.")
    return size


def _seeds(values: Sequence | None, size: int, seed: int) -> list[int]:
    """Each member's seed: the ones given, else ``seed, seed + 1, ...``; ints in ``[0, 2**31)``."""
    seeds = list(values) if values is not None else [seed + i for i in range(size)]
    for i, value in enumerate(seeds):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < _SEED_RANGE:
            raise ValueError(f"Member {i}'s seed must be an int in [0, 2**31), got {value!r}.")
    return [int(value) for value in seeds]


def _numbers(name: str, values: Sequence) -> np.ndarray:
    """One optimizer argument's values as float32, each checked to be a real number."""
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"hyperparams[{name!r}][{i}] must be a number, got {value!r}.")
    return np.asarray(values, np.float32)


def _loss_weights(
    output_names: Sequence[str], loss: Any, shared: Any, values: Sequence | None, size: int
) -> np.ndarray:
    """``(size, outputs)`` loss weights: each member's entry (None: the shared ``loss_weights``) resolved."""
    entries = [shared] * size if values is None else [shared if v is None else v for v in values]
    resolved = []
    for i, entry in enumerate(entries):
        try:
            resolved.append(resolve_objective(output_names, loss, entry).loss_weights)
        except ValueError as err:
            raise ValueError(f"hyperparams: member {i}'s loss_weights: {err}") from None
    return np.asarray(resolved, np.float32)


def _layer_values(name: str, values: Sequence, tunable: dict[str, Tunable]) -> np.ndarray:
    """A layer value's members' values, checked against the model's tunables and the value's range."""
    if name not in tunable:
        known = ", ".join(tunable) or "none (no Dropout, no L1/L2 regularizer)"
        raise ValueError(f"hyperparams[{name!r}] is not a value the model can vary; it can: {known}.")
    checked = _numbers(name, values)
    low, high = tunable[name].low, tunable[name].high
    outside = [i for i, v in enumerate(checked) if not low <= v <= high]
    if outside:
        i = outside[0]
        raise ValueError(f"hyperparams[{name!r}][{i}] must be in [{low}, {high}], got {values[i]!r}.")
    return checked


def members(
    output_names: Sequence[str],
    loss: Any,
    loss_weights: Any,
    hyperparams: Mapping[str, Sequence] | None,
    size: int | None,
    seed: int,
    tunable: dict[str, Tunable],
) -> Members:
    """The checked per-member values of a population (see the module); ``tunable``: the model's, flat."""
    hyperparams = dict(hyperparams or {})
    count = _size(hyperparams, size)
    seeds = _seeds(hyperparams.pop("seed", None), count, seed)
    weights = _loss_weights(output_names, loss, loss_weights, hyperparams.pop("loss_weights", None), count)
    layers = {name: _layer_values(name, v, tunable) for name, v in hyperparams.items() if "/" in name}
    optimizer = {name: _numbers(name, v) for name, v in hyperparams.items() if "/" not in name}
    return Members(count, seeds, weights, optimizer, layers)


def nested(flat: dict[str, Any]) -> dict:
    """``{"dropout/rate": v}`` as the tree a step takes: ``{"dropout": {"rate": v}}``."""
    tree: dict = {}
    for name, value in flat.items():
        *path, leaf = name.split("/")
        node = tree
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree
