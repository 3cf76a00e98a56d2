"""Keras's distributions on ``jax.sharding``: DataParallel, ModelParallel, the current one, initialize.

A distribution says how ``fit``, ``evaluate`` and ``predict`` lay arrays on
a mesh: each batch split along ``batch_dim_name``, each weight as the layout
map says (replicated where nothing matches). The step itself is the one
single-device program, compiled by ``jax.jit`` for those shardings (SPMD:
XLA inserts the collectives).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import jax
from jax.sharding import NamedSharding, PartitionSpec

from dagjax.distribution._mesh import DeviceMesh, LayoutMap, TensorLayout, list_devices
from dagjax.training.fit import current_distribution, use_distribution


class Distribution:
    """A mesh and the rule that lays batches and weights on it (the base of the Keras distributions)."""

    def __init__(self, device_mesh: DeviceMesh, batch_dim_name: str | None = None) -> None:
        self._device_mesh = device_mesh
        self._batch_dim_name = batch_dim_name or device_mesh.axis_names[0]
        if self._batch_dim_name not in device_mesh.axis_names:
            raise ValueError(
                f"{type(self).__name__}: batch_dim_name {self._batch_dim_name!r} is not an axis of "
                f"{device_mesh}."
            )

    @property
    def device_mesh(self) -> DeviceMesh:
        """The mesh arrays are laid on."""
        return self._device_mesh

    @property
    def batch_dim_name(self) -> str:
        """The mesh axis batches are split along."""
        return self._batch_dim_name

    @property
    def num_processes(self) -> int:
        """Processes in the run (``initialize`` joins them); each feeds its own share of every batch."""
        return jax.process_count()

    @property
    def process_id(self) -> int:
        """This process's index; process 0 writes the files."""
        return jax.process_index()

    def get_data_layout(self, data_shape: Sequence[int]) -> TensorLayout:
        """A batch's layout: its first dimension split along ``batch_dim_name``."""
        return TensorLayout([self._batch_dim_name] + [None] * (len(data_shape) - 1), self._device_mesh)

    def get_variable_layout(self, path: str, shape: Sequence[int]) -> TensorLayout:
        """The layout of the weight at ``path`` (``"dense/kernel"``): replicated unless a subclass says."""
        return TensorLayout([None] * len(shape), self._device_mesh)

    def data_sharding(self) -> NamedSharding:
        """``get_data_layout`` as a ``NamedSharding`` (it splits the first dimension, whatever the rank)."""
        return NamedSharding(self._device_mesh.backend_mesh, PartitionSpec(self._batch_dim_name))

    def replicated(self) -> NamedSharding:
        """A whole copy on every device of the mesh."""
        return NamedSharding(self._device_mesh.backend_mesh, PartitionSpec())

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Make this the current distribution inside the ``with`` block."""
        before = distribution()
        set_distribution(self)
        try:
            yield
        finally:
            set_distribution(before)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(device_mesh={self._device_mesh}, batch_dim_name={self._batch_dim_name!r})"
        )


class DataParallel(Distribution):
    """Every weight replicated, every batch split over the devices (all of them unless told)."""

    def __init__(
        self,
        device_mesh: DeviceMesh | None = None,
        devices: Sequence | None = None,
        auto_shard_dataset: bool = True,
    ) -> None:
        if device_mesh is None:
            devices = list_devices() if not devices else list(devices)
            device_mesh = DeviceMesh((len(devices),), ("batch",), devices)
        super().__init__(device_mesh, device_mesh.axis_names[0])
        self.auto_shard_dataset = auto_shard_dataset


class ModelParallel(Distribution):
    """Weights laid out by a ``LayoutMap`` (replicated where no key matches), batches split along
    ``batch_dim_name``.

    Keras's older ``ModelParallel(device_mesh=..., layout_map=...)`` form is
    accepted; the mesh is the layout map's.
    """

    def __init__(
        self,
        *,
        layout_map: LayoutMap | None = None,
        batch_dim_name: str | None = None,
        auto_shard_dataset: bool = True,
        device_mesh: DeviceMesh | None = None,
    ) -> None:
        if not isinstance(layout_map, LayoutMap):
            raise ValueError(
                f"ModelParallel needs layout_map=LayoutMap(device_mesh), got {type(layout_map).__name__}."
            )
        if device_mesh is not None and device_mesh is not layout_map.device_mesh:
            raise ValueError(
                "ModelParallel: device_mesh differs from layout_map's mesh; give only the layout_map."
            )
        super().__init__(layout_map.device_mesh, batch_dim_name)
        self._layout_map = layout_map
        self.auto_shard_dataset = auto_shard_dataset

    @property
    def layout_map(self) -> LayoutMap:
        """The weight paths' layouts."""
        return self._layout_map

    def get_variable_layout(self, path: str, shape: Sequence[int]) -> TensorLayout:
        """The layout map's entry for ``path``, or replicated where no key matches."""
        layout = self._layout_map[path]
        return super().get_variable_layout(path, shape) if layout is None else layout


def set_distribution(value: Distribution | None) -> None:
    """Make ``value`` the distribution ``fit``/``evaluate``/``predict`` use (None: one device, as without)."""
    if value is not None and not isinstance(value, Distribution):
        raise ValueError(f"set_distribution expects a DataParallel, a ModelParallel or None, got {value!r}.")
    use_distribution(value)


def distribution() -> Distribution | None:
    """The current distribution, or None."""
    return current_distribution()


def initialize(
    job_addresses: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Join this process to a multi-process run (``jax.distributed.initialize``); call it before any JAX work.

    ``job_addresses``: comma-separated ``host:port`` of the jobs, the first
    being the coordinator (JAX needs only that one). Each argument falls back
    to Keras's variables ``KERAS_DISTRIBUTION_JOB_ADDRESSES``,
    ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``,
    then to what ``jax.distributed`` detects itself (a TPU pod, SLURM).
    """
    env = os.environ
    if job_addresses is None:
        job_addresses = env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")
    if num_processes is None and "KERAS_DISTRIBUTION_NUM_PROCESSES" in env:
        num_processes = int(env["KERAS_DISTRIBUTION_NUM_PROCESSES"])
    if process_id is None and "KERAS_DISTRIBUTION_PROCESS_ID" in env:
        process_id = int(env["KERAS_DISTRIBUTION_PROCESS_ID"])
    coordinator = job_addresses.split(",")[0].strip() if job_addresses else None
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id
    )
