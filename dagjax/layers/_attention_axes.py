"""MultiHeadAttention over chosen axes of ``(batch, *axes, dim)`` inputs, as Keras 3's ``attention_axes``.

The projected query, key and value are ``(batch, *axes, heads, channels)``.
Every axis but the attention axes and the channels (the batch, the other
axes, the heads) is a batch axis of the attention; the scores are laid out as
Keras lays them out, ``(*batch axes, *query attention axes, *key attention
axes)`` (``(batch, heads, Tq, Tv)`` for sequences), and the softmax runs over
the key attention axes together. Masks ``(batch, Tq..., Tv...)`` reach every
head as Keras's do: a unit axis inserted before the query attention axes until
they have the scores' rank.
"""

from __future__ import annotations

import string

import jax
import jax.numpy as jnp


def resolve_axes(axes: tuple | None, rank: int) -> tuple[int, ...]:
    """The attention axes of inputs of ``rank`` as non-negative ints: all but batch and features by default.

    Raises ``ValueError`` naming the axes when one is the batch or the feature axis, or out of range.
    """
    if axes is None:
        return tuple(range(1, rank - 1))
    resolved = tuple(axis + rank if axis < 0 else axis for axis in axes)
    if not all(1 <= axis <= rank - 2 for axis in resolved) or len(set(resolved)) != len(resolved):
        raise ValueError(
            f"attention_axes={axes} do not fit inputs of rank {rank}: the axes must be distinct and lie "
            f"between the batch axis and the feature axis, within [1, {rank - 2}] (or [{1 - rank}, -2])"
        )
    return resolved


def equations(rank: int, axes: tuple[int, ...]) -> tuple[str, str]:
    """``(scores, combine)`` einsum equations for projected tensors of ``rank`` (inputs' rank + 1).

    ``scores``: ``query, key -> scores``; ``combine``: ``weights, value -> output``.
    """
    letters = iter(string.ascii_lowercase)
    query = "".join(next(letters) for _ in range(rank))
    key = "".join(next(letters) if i in axes else query[i] for i in range(rank))
    batch = "".join(query[i] for i in range(rank - 1) if i not in axes)
    scores = batch + "".join(query[i] for i in axes) + "".join(key[i] for i in axes)
    return f"{query},{key}->{scores}", f"{scores},{key}->{query}"


def mask_for_scores(mask: jax.Array, scores_rank: int, axes: tuple[int, ...]) -> jax.Array:
    """``mask`` with unit axes before its query attention axes until it has the scores' rank (Keras's)."""
    while mask.ndim < scores_rank:
        mask = jnp.expand_dims(mask, -2 * len(axes) - 1)
    return mask
