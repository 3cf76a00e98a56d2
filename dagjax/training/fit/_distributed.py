"""The fit session under a ``dagjax.distribution``: where the train state, the data and each batch live.

The current distribution lives here, below ``dagjax.distribution`` (which
sets it), so the fit session reads it without importing upward. Without one every function here is
the plain single-device path, unchanged. With one:

- the train state is placed by :func:`train_state_shardings` (weights by the
  layout map, optimizer state like its weights, the rest replicated), and the
  step pins its outputs to the same shardings, so each call gets back what
  it was given and nothing recompiles;
- data placed once for a whole fit is replicated on the mesh and each
  gathered batch is constrained to split along the batch axis, so every
  device computes only its share (a batch size that does not divide the
  devices is split unevenly by XLA, never refused);
- in a multi-process run each process reads its own data and its share of
  every batch: the rows of the batch-axis positions its devices hold
  (:func:`batch_positions`; ``batch_size // num_processes`` when each process
  holds its own positions, Keras's auto-sharding; all of them when a 'model'
  axis spans the processes, and then every process feeds the same rows, as
  Keras replicates data across the processes of one model replica); the
  blocks of host batches become global arrays (:func:`global_chunk`);
- ``predict`` in a multi-process run: each process feeds its own inputs, the
  processes agree on every step's padded size (:func:`agreed_rows`), and each
  gets back the outputs of its own rows (:func:`local_outputs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec

from dagjax.training.core import TrainState
from dagjax.training.fit._placement import place, state_shardings, weight_shardings

if TYPE_CHECKING:
    from dagjax.distribution import Distribution

_current: list[Distribution | None] = [None]  # set by ``dagjax.distribution.set_distribution``


def use_distribution(dist: Distribution | None) -> None:
    """Make ``dist`` the one ``fit``, ``evaluate`` and ``predict`` run under (``set_distribution``'s)."""
    _current[0] = dist


def current_distribution() -> Distribution | None:
    """The distribution ``fit`` runs under now, or None."""
    return _current[0]


def multi_process(dist: Distribution | None) -> bool:
    """Whether ``dist`` spans several processes (each feeding its own data)."""
    return dist is not None and jax.process_count() > 1


def train_state_shardings(dist: Distribution, ts: TrainState) -> TrainState:
    """Where each part of ``ts`` lives (works on arrays and on tracers alike: only paths and shapes count)."""
    params = weight_shardings(dist, ts.params)
    replicated = lambda tree: jax.tree_util.tree_map(lambda _: dist.replicated(), tree)
    return TrainState(
        params,
        weight_shardings(dist, ts.state),
        None if ts.opt_state is None else state_shardings(dist, ts.opt_state, ts.params, params),
        None if ts.step is None else dist.replicated(),
        replicated(ts.metrics),
    )


def place_train_state(ts: TrainState) -> TrainState:
    """``ts`` laid on the current distribution's mesh (as it is without one)."""
    dist = current_distribution()
    return ts if dist is None else place(ts, train_state_shardings(dist, ts))


def pin_train_state(dist: Distribution | None, ts: TrainState) -> TrainState:
    """Inside a step: ``ts`` constrained to the shardings it was placed with."""
    if dist is None:
        return ts
    return jax.lax.with_sharding_constraint(ts, train_state_shardings(dist, ts))


def pin_metrics(dist: Distribution | None, metrics: Any) -> Any:
    """Inside a step: metric state constrained to be replicated, as it was placed."""
    if dist is None:
        return metrics
    return jax.lax.with_sharding_constraint(
        metrics, jax.tree_util.tree_map(lambda _: dist.replicated(), metrics)
    )


def split_batch(dist: Distribution | None, batch: tuple) -> tuple:
    """Inside a step: each array of a gathered batch split along the batch axis."""
    if dist is None:
        return batch
    sharding = dist.data_sharding()
    return jax.tree_util.tree_map(lambda a: jax.lax.with_sharding_constraint(a, sharding), batch)


def place_loaded(params: Any, state: Any, opt_state: Any) -> tuple[Any, Any, Any]:
    """Weights (and optimizer state, or None) read from a file, each put from the host straight into its
    sharding under the current distribution (as they are without one)."""
    dist = current_distribution()
    if dist is None:
        return params, state, opt_state
    params_sharding = weight_shardings(dist, params)
    params, state = place((params, state), (params_sharding, weight_shardings(dist, state)))
    if opt_state is not None:
        opt_state = place(opt_state, state_shardings(dist, opt_state, params, params_sharding))
    return params, state, opt_state


def put_whole(tree: Any) -> Any:
    """Host arrays every process holds alike (data, an epoch plan) on the device, or on every mesh device."""
    dist = current_distribution()
    return (
        jax.device_put(tree)
        if dist is None
        else place(tree, jax.tree_util.tree_map(lambda _: dist.replicated(), tree))
    )


def batch_positions(dist: Distribution, process: int | None = None) -> tuple[list[int], int]:
    """The positions along the batch axis that a process's devices hold (ascending; this process's by
    default), and the axis size.

    A process feeds the rows of these positions; processes that share a position
    (a model axis across processes) feed the same rows for it.
    """
    mesh = dist.device_mesh
    axis = mesh.axis_names.index(dist.batch_dim_name)
    by_position = np.moveaxis(mesh.devices, axis, 0).reshape(mesh.shape[axis], -1)
    me = jax.process_index() if process is None else process
    held = [i for i, devices in enumerate(by_position) if any(d.process_index == me for d in devices)]
    return held, len(by_position)


def local_batch_size(batch_size: int) -> int:
    """The rows of each batch this process feeds: ``batch_size``, or its share in a multi-process run."""
    dist = current_distribution()
    if not multi_process(dist):
        return batch_size
    held, size = batch_positions(dist)
    if batch_size % size:
        raise ValueError(
            f"batch_size={batch_size} is the global batch of a {jax.process_count()}-process run whose "
            f"batch axis {dist.batch_dim_name!r} has {size} positions: it must be a multiple of {size}, "
            f"each process feeding batch_size // {size} rows for each position it holds ({len(held)} here)."
        )
    return batch_size // size * len(held)


def global_chunk(batches: list[tuple], masks: list[np.ndarray], capacity: int) -> tuple:
    """Each process's host batches as one global block: global batch ``r`` is every position's part of
    batch ``r``, in batch-axis order.

    A process's batch of ``rows`` rows is cut into one part of ``share`` rows per
    batch-axis position it holds (:func:`batch_positions`). Position ``j``'s parts
    of all ``capacity`` batches are rows ``j * capacity * share ..`` of the global
    data, so each device gathers its batch rows from its own shard; ``idx[r]``
    names batch ``r``'s rows, ``mask`` is split like the batch. Returns
    ``(data, idx, mask)`` of a chunk of ``len(batches)`` steps.
    """
    dist = current_distribution()
    count, (held, size) = len(batches), batch_positions(dist)
    batches = batches + [batches[0]] * (capacity - count)
    masks = masks + [np.zeros_like(masks[0])] * (capacity - count)
    rows = masks[0].shape[0]
    if rows % len(held):  # arrays' batches always split (local_batch_size); a stream's come as they are
        raise ValueError(
            f"A batch of {rows} rows cannot be split over the {len(held)} batch positions this process "
            f"holds: in a {jax.process_count()}-process run each batch a process feeds needs a multiple "
            f"of {len(held)} rows."
        )
    share = rows // len(held)

    def by_position(*vs: np.ndarray) -> np.ndarray:  # (capacity, held, share, ...) -> position-major rows
        stacked = np.stack(vs).reshape(capacity, len(held), share, *vs[0].shape[1:])
        return stacked.swapaxes(0, 1).reshape(-1, *vs[0].shape[1:])

    split = dist.data_sharding()
    data = jax.tree_util.tree_map(
        lambda v: jax.make_array_from_process_local_data(split, v, (size * capacity * share, *v.shape[1:])),
        jax.tree_util.tree_map(by_position, *batches),
    )
    idx = (
        (
            np.arange(size)[None, :, None] * capacity * share
            + np.arange(capacity)[:, None, None] * share
            + np.arange(share)[None, None, :]
        )
        .reshape(capacity, size * share)
        .astype(np.int32)
    )
    mask_sharding = jax.sharding.NamedSharding(
        split.mesh, jax.sharding.PartitionSpec(None, dist.batch_dim_name)
    )
    mask = jax.make_array_from_process_local_data(mask_sharding, np.stack(masks), (capacity, size * share))
    return data, put_whole(idx), mask


def place_for_inference(params: Any, state: Any) -> tuple[Any, Any]:
    """``predict``'s weights on the current distribution's mesh (as they are without one)."""
    dist = current_distribution()
    if dist is None:
        return params, state
    return place((params, state), (weight_shardings(dist, params), weight_shardings(dist, state)))


def batch_multiple() -> int:
    """Rows a ``predict`` batch is padded to a multiple of: the batch axis's devices (1 without), in a
    multi-process run the batch-axis positions this process holds."""
    dist = current_distribution()
    if dist is None:
        return 1
    if multi_process(dist):
        return len(batch_positions(dist)[0])
    mesh = dist.device_mesh
    return mesh.shape[mesh.axis_names.index(dist.batch_dim_name)]


def place_inputs(x: Any) -> Any:
    """A ``predict`` batch (padded by :func:`batch_multiple`) split along the batch axis; in a
    multi-process run this process's batch is its share of a global one."""
    dist = current_distribution()
    if dist is None:
        return x
    if multi_process(dist):
        return jax.tree_util.tree_map(lambda v: _global_rows(dist, np.asarray(v)), x)
    return jax.device_put(x, jax.tree_util.tree_map(lambda _: dist.data_sharding(), x))


def _global_rows(dist: Distribution, local: np.ndarray) -> jax.Array:
    """Every process's ``local`` rows (an equal part per batch-axis position it holds) as one global array
    split along the batch axis, position by position."""
    held, size = batch_positions(dist)
    shape = (local.shape[0] // len(held) * size, *local.shape[1:])
    return jax.make_array_from_process_local_data(dist.data_sharding(), local, shape)


def agreed_rows(rows: int) -> np.ndarray:
    """Every process's row count for this ``predict`` step (a collective: all processes call it in
    turn, so they take the same number of steps of the same padded size); ``[rows]`` in one process."""
    if not multi_process(current_distribution()):
        return np.asarray([rows])
    return np.asarray(multihost_utils.process_allgather(np.int32(rows))).reshape(-1)


def rows_split(outputs: Any) -> Any:
    """Inside ``predict``'s function: outputs split along the batch axis only, so that in a multi-process
    run each process holds whole rows of its own inputs (a model-parallel output is gathered)."""
    dist = current_distribution()
    if not multi_process(dist):
        return outputs
    return jax.lax.with_sharding_constraint(
        outputs, jax.tree_util.tree_map(lambda _: dist.data_sharding(), outputs)
    )


def local_outputs(outputs: Any) -> Any:
    """``predict``'s outputs for this process's rows (in a multi-process run), else as they are."""
    dist = current_distribution()
    if not multi_process(dist):
        return outputs
    specs = jax.tree_util.tree_map(lambda _: PartitionSpec(dist.batch_dim_name), outputs)
    return multihost_utils.global_array_to_host_local_array(outputs, dist.device_mesh.backend_mesh, specs)
