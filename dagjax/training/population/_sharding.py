"""A population under a ``dagjax.distribution``: members stacked, each laid out as ``fit`` lays out one model.

Every leaf of a :class:`PopulationState` has a leading member axis. Under a
distribution that axis is never split: each member's weights and optimizer
state take the layout ``fit`` gives them (the layout map's, replicated where
nothing matches) with the member axis in front, the per-member numbers
(hyperparameters, seeds) are replicated, and each member's batch is split
along the batch axis, as ``fit`` splits its batch: every device computes its
share of every member's rows. The data set is replicated on the mesh and the
gathered batches are constrained to the split, as in ``fit``. Without a
distribution every function here is the identity. In a multi-process run the
data set is global instead, each process's rows its own (``_process_rows``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

from dagjax.training.fit import current_distribution, place, train_state_shardings

if TYPE_CHECKING:
    from dagjax.distribution import Distribution
    from dagjax.training.population._population import PopulationState


def _behind_members(sharding: NamedSharding) -> NamedSharding:
    """``sharding`` of one member's leaf, for the leaf of all members stacked on a leading axis."""
    return NamedSharding(sharding.mesh, PartitionSpec(None, *sharding.spec))


def population_shardings(dist: Distribution, ps: PopulationState) -> PopulationState:
    """Where each leaf of ``ps`` lives (arrays or tracers: only paths and shapes count; see the module)."""
    member = jax.tree_util.tree_map(lambda v: jax.ShapeDtypeStruct(v.shape[1:], v.dtype), ps.train)
    train = jax.tree_util.tree_map(_behind_members, train_state_shardings(dist, member))
    replicated = lambda tree: jax.tree_util.tree_map(lambda _: dist.replicated(), tree)
    return type(ps)(train, replicated(ps.hyperparams), replicated(ps.seed))


def place_population(ps: PopulationState) -> PopulationState:
    """``ps`` laid out on the current distribution's mesh (as it is without one)."""
    dist = current_distribution()
    return ps if dist is None else place(ps, population_shardings(dist, ps))


def pin_population(dist: Distribution | None, ps: PopulationState) -> PopulationState:
    """Inside a step: ``ps`` constrained to the layout it was placed with, so each call returns it so."""
    if dist is None:
        return ps
    return jax.lax.with_sharding_constraint(ps, population_shardings(dist, ps))


def split_rows(dist: Distribution | None, batch: Any, member_axis: bool) -> Any:
    """Inside a step: each array of a gathered batch split along the batch axis (behind a member axis)."""
    if dist is None:
        return batch
    leading = (None,) if member_axis else ()
    sharding = NamedSharding(dist.device_mesh.backend_mesh, PartitionSpec(*leading, dist.batch_dim_name))
    return jax.tree_util.tree_map(lambda a: jax.lax.with_sharding_constraint(a, sharding), batch)
