"""A population's data in a multi-process run: each process feeds its own rows of every member's batches.

As in ``fit`` (``training/fit/_distributed.py``), a process holds some
positions of the batch axis and feeds that share of each batch: member ``m``'s
global batch ``r`` is, position by position, the rows of its batch ``r`` that
the process holding the position drew from its own data. Here the data stays
on the devices for the whole fit, as it does in one process: each process's
data set becomes its positions' parts of one global data set
(:func:`global_data`), and each member's plan over the process's rows (drawn
with the member's seed, so every process draws the same one) becomes a plan
over the global rows (:func:`global_plan`). Every process must therefore hold
the same number of rows, which is checked (:func:`checked_rows`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils

from dagjax.training.fit import current_distribution
from dagjax.training.fit._distributed import batch_positions, local_batch_size, multi_process, put_whole

if TYPE_CHECKING:
    from dagjax.distribution import Distribution


class RowLayout(NamedTuple):
    """Where each process's rows live in the global data set."""

    held: list[list[int]]  # per process: the batch-axis positions it holds (ascending)
    part: int  # rows of the global data set per position


def checked_rows(size: int, what: str) -> None:
    """Refuse, naming every process's count, data sets of different sizes across the processes."""
    counts = np.asarray(multihost_utils.process_allgather(np.int32(size))).reshape(-1)
    if (counts != size).any():
        raise ValueError(
            f"A population in a {len(counts)}-process run needs the same number of {what} rows in every "
            f"process (each member draws one shuffle for all of them); the processes hold "
            f"{counts.tolist()}."
        )


def local_batch(dist: Distribution, batch_size: int, size: int) -> int:
    """This process's rows of each global batch of ``batch_size`` (at most its ``size`` rows, as ``fit``),
    a whole number per position it holds."""
    rows, held = min(local_batch_size(batch_size), size), len(batch_positions(dist)[0])
    if rows % held:
        raise ValueError(
            f"batch_size={batch_size}: this process's {rows} rows of each batch cannot be split over the "
            f"{held} batch positions it holds; give a batch size of at least {held} rows per position."
        )
    return rows


def global_data(dist: Distribution, data: Any, size: int) -> tuple[Any, RowLayout]:
    """This process's ``size`` rows as its positions' parts of one global data set split by rows.

    The rows are padded (wrapping around) to a whole part per held position;
    no plan ever names the padding.
    """
    held, positions = batch_positions(dist)
    part = -(-size // len(held))
    rows = np.arange(part * len(held)) % size
    split = dist.data_sharding()
    placed = jax.tree_util.tree_map(
        lambda v: jax.make_array_from_process_local_data(
            split, np.asarray(v)[rows], (positions * part, *np.shape(v)[1:])
        ),
        data,
    )
    everyone = [batch_positions(dist, process)[0] for process in range(jax.process_count())]
    return placed, RowLayout(everyone, part)


def global_plan(layout: RowLayout, idx: np.ndarray, mask: np.ndarray | None) -> tuple:
    """A plan ``(idx, mask)`` over one process's rows (``(..., rows, local batch)``, the same in every
    process) as the plan of the global batches over the global data set."""
    owner = {}  # position -> (a process holding it, its index among that process's positions)
    for held in layout.held:
        for i, position in enumerate(held):
            owner.setdefault(position, (held, i))
    share = idx.shape[-1] // len(layout.held[0])
    columns, held_by_column = [], []
    for position in sorted(owner):
        held, i = owner[position]
        columns.extend(range(i * share, (i + 1) * share))
        held_by_column.extend([np.asarray(held)] * share)
    local = idx[..., columns]
    held_at = np.stack(held_by_column)[np.arange(len(columns)), local // layout.part]  # each row's position
    global_idx = (held_at * layout.part + local % layout.part).astype(np.int32)
    return global_idx, None if mask is None else mask[..., columns]


def population_data(data: Any, size: int, batch_size: int, what: str) -> tuple[Any, int, RowLayout | None]:
    """The data set (``size`` rows) on the devices for a whole fit, the rows of each batch this process
    draws, and where its rows live in a multi-process run (None otherwise: the data set is whole)."""
    dist = current_distribution()
    if not multi_process(dist):
        return put_whole(data), min(batch_size, size), None
    checked_rows(size, what)
    rows = local_batch(dist, batch_size, size)
    placed, layout = global_data(dist, data, size)
    return placed, rows, layout


def plan_on_devices(layout: RowLayout | None, idx: np.ndarray, mask: np.ndarray | None) -> tuple:
    """A host plan ``(idx, mask)`` on the devices, over the global rows in a multi-process run."""
    if layout is not None:
        idx, mask = global_plan(layout, idx, mask)
    return put_whole(idx), None if mask is None else put_whole(mask)
