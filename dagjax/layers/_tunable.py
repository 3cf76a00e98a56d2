"""Scalars a train step may give layers as traced values: Dropout's rate, regularizer factors.

A layer's ``tunable()`` is a tree of :class:`Tunable` leaves (value and
range) keyed like its params: a weight's regularizer factors under the
weight's name (``{"kernel": {"l2": ...}}``), the activity regularizer's under
``"activity_regularizer"``, a layer's own values by name (Dropout's
``"rate"``); a model nests its layers' trees under their names. A step given
``hyperparams`` of that shape (traced arrays for some leaves) computes with
them instead of the config's numbers, so one compiled program serves every
value: each member of a population its own Dropout rate. Without them,
nothing changes in the program.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax.numpy as jnp

if TYPE_CHECKING:
    from dagjax.layers._base import Layer


class Tunable(NamedTuple):
    """A scalar of a layer's config that a step can take traced: its value, and the range it must stay in."""

    value: float
    low: float
    high: float


def factor_tunables(regularizer: Any) -> dict:
    """A regularizer's factors as tunables (``{"l2": Tunable(0.01, 0, inf)}``); none for a function."""
    factors = getattr(regularizer, "factors", None)
    return {} if factors is None else {k: Tunable(v, 0.0, math.inf) for k, v in factors().items()}


def regularized(regularizer: Callable, factors: dict | None) -> Callable:
    """``regularizer``, with its factors replaced by ``factors`` (traced values) when given."""
    return regularizer if not factors else lambda x: regularizer(x, factors)


def hyperparam_kwargs(layer: Layer, hyperparams: dict | None) -> dict:
    """``{"hyperparams": ...}`` for ``apply`` of a layer with values of its own (Dropout), else ``{}``."""
    return {"hyperparams": hyperparams} if hyperparams and layer.uses_hyperparams else {}


def activity_penalty(regularizer: Callable, outputs: list, mask: Any) -> Any:
    """The activity regularizer's penalty over a layer's outputs, each divided by its real rows.

    ``mask`` (batch,) marks real rows (1.0); padding rows count for nothing.
    """
    penalty = 0.0
    for x in outputs:
        if mask is not None and x.ndim and x.shape[0] == mask.shape[0]:
            rows = jnp.reshape(mask, mask.shape + (1,) * (x.ndim - 1)).astype(x.dtype)
            penalty = penalty + regularizer(x * rows) / jnp.maximum(jnp.sum(mask), 1.0)
        else:
            penalty = penalty + regularizer(x) / max(1, x.shape[0])
    return penalty


def flat_tunables(tree: dict, prefix: str = "") -> dict[str, Tunable]:
    """A ``tunable()`` tree as ``{"dropout/rate": Tunable, "dense/kernel/l2": Tunable, ...}``."""
    flat: dict[str, Tunable] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        flat.update({name: value} if isinstance(value, Tunable) else flat_tunables(value, f"{name}/"))
    return flat
