"""Keras's device vocabulary on ``jax.sharding``: devices, a named mesh of them, tensor layouts, layout maps.

``DeviceMesh`` is a ``jax.sharding.Mesh`` under Keras's name (``backend_mesh``
is the JAX one); ``TensorLayout`` is a ``PartitionSpec`` over a mesh
(``backend_layout`` is its ``NamedSharding``); ``LayoutMap`` maps weight paths
such as ``"dense/kernel"`` to layouts by regular expression, as Keras's does.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def list_devices(device_type: str | None = None) -> list[str]:
    """Every device of one type (the default backend's if None), as Keras names them: ``"cpu:0"``, ...

    In a multi-process run these are the global devices, every process's.
    """
    devices = jax.devices(device_type.lower()) if device_type else jax.devices()
    return [f"{d.platform}:{d.id}" for d in devices]


def _jax_device(device: Any) -> jax.Device:
    """A JAX device from a JAX device or Keras's ``"cpu:0"`` name (the id is the global device id)."""
    if isinstance(device, jax.Device):
        return device
    platform, _, index = str(device).partition(":")
    try:
        candidates = jax.devices(platform.lower() or None)
    except RuntimeError:  # no backend of that platform
        candidates = []
    for candidate in candidates:
        if str(candidate.id) == index:
            return candidate
    raise ValueError(f"No device named {device!r}; list_devices() gives {list_devices()}.")


class DeviceMesh:
    """Devices on named axes (Keras's ``DeviceMesh``), e.g. ``DeviceMesh((2, 2), ("batch", "model"))``."""

    def __init__(
        self, shape: Sequence[int], axis_names: Sequence[str], devices: Sequence | None = None
    ) -> None:
        shape, axis_names = tuple(shape or ()), tuple(axis_names or ())
        if not shape or not axis_names:
            raise ValueError(
                f"DeviceMesh: shape and axis_names cannot be empty, got {shape} and {axis_names}."
            )
        if len(shape) != len(axis_names):
            raise ValueError(
                f"DeviceMesh: shape {shape} and axis_names {axis_names} must have the same length."
            )
        devices = list_devices() if devices is None else devices
        flat = [_jax_device(d) for d in np.asarray(devices, dtype=object).reshape(-1)]
        if math.prod(shape) != len(flat):
            raise ValueError(
                f"DeviceMesh: shape {shape} needs {math.prod(shape)} devices; {len(flat)} were given."
            )
        self._shape, self._axis_names = shape, axis_names
        self._devices = np.asarray(flat, dtype=object).reshape(shape)
        self.backend_mesh = Mesh(self._devices, axis_names)

    @property
    def shape(self) -> tuple[int, ...]:
        """Devices along each axis."""
        return self._shape

    @property
    def axis_names(self) -> tuple[str, ...]:
        """The axes' names, as layouts use them."""
        return self._axis_names

    @property
    def devices(self) -> np.ndarray:
        """The JAX devices, shaped like the mesh."""
        return self._devices

    def __repr__(self) -> str:
        return f"DeviceMesh(shape={self._shape}, axis_names={self._axis_names})"


class TensorLayout:
    """How one tensor is split over a mesh: one mesh axis name (or None: not split) per dimension."""

    def __init__(self, axes: Sequence[str | None], device_mesh: DeviceMesh | None = None) -> None:
        self._axes = tuple(axes)
        self._device_mesh: DeviceMesh | None = None
        if device_mesh is not None:
            self.device_mesh = device_mesh

    @property
    def axes(self) -> tuple[str | None, ...]:
        """Per dimension, the mesh axis it is split along, or None."""
        return self._axes

    @property
    def device_mesh(self) -> DeviceMesh | None:
        """The mesh it splits over (a ``LayoutMap`` sets its own when the layout has none)."""
        return self._device_mesh

    @device_mesh.setter
    def device_mesh(self, mesh: DeviceMesh) -> None:
        unknown = [a for a in self._axes if a is not None and a not in mesh.axis_names]
        if unknown:
            raise ValueError(
                f"TensorLayout{self._axes}: axes {unknown} are not in the mesh's {mesh.axis_names}."
            )
        self._device_mesh = mesh

    @property
    def backend_layout(self) -> NamedSharding:
        """The layout as a ``jax.sharding.NamedSharding``."""
        if self._device_mesh is None:
            raise ValueError(
                f"TensorLayout{self._axes} has no device_mesh yet: give one, or put it in a LayoutMap."
            )
        return NamedSharding(self._device_mesh.backend_mesh, PartitionSpec(*self._axes))

    def __repr__(self) -> str:
        return f"TensorLayout(axes={self._axes}, device_mesh={self._device_mesh})"


class LayoutMap(collections.abc.MutableMapping):
    """Weight paths to layouts: ``layout_map["dense.*kernel"] = (None, "model")``.

    A path (``"dense/kernel"``, ``"encoder/dense/kernel"``) finds its layout by
    exact key first, else by the one key that matches all of it as a regular
    expression (``re.fullmatch``, as Keras 3 does); more than one match is an error.
    """

    def __init__(self, device_mesh: DeviceMesh) -> None:
        self._layout_map: dict[str, TensorLayout] = collections.OrderedDict()
        self._device_mesh = device_mesh

    @property
    def device_mesh(self) -> DeviceMesh:
        """The mesh every layout of the map splits over."""
        return self._device_mesh

    def __getitem__(self, key: str) -> TensorLayout | None:
        if key in self._layout_map:
            return self._layout_map[key]
        matches = [pattern for pattern in self._layout_map if re.fullmatch(pattern, key)]
        if len(matches) > 1:
            raise ValueError(
                f"Path '{key}' matches several LayoutMap keys: {matches}; make each path match at most one."
            )
        return self._layout_map[matches[0]] if matches else None

    def __setitem__(self, key: str, layout: TensorLayout | tuple | list) -> None:
        if key in self._layout_map:
            raise ValueError(f"LayoutMap already has '{key}' ({self._layout_map[key]}); keys must be unique.")
        if isinstance(layout, (tuple, list)):
            layout = TensorLayout(layout)
        if not isinstance(layout, TensorLayout):
            raise ValueError(
                f"LayoutMap['{key}']: expected a TensorLayout or a tuple of axis names, "
                f"got {type(layout).__name__}."
            )
        if layout.device_mesh is None:
            layout.device_mesh = self._device_mesh
        self._layout_map[key] = layout

    def __delitem__(self, key: str) -> None:
        del self._layout_map[key]

    def __len__(self) -> int:
        return len(self._layout_map)

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout_map)
