"""``InputSpec``: what a layer (or model) says its first argument must look like, checked as Keras checks it.

A layer sets ``self.input_spec`` (in ``__init__`` or ``build``) to one spec or
a list of them, one per tensor of its first argument; each call on symbolic
tensors is checked against it, and a model's own ``input_spec`` is checked
against the arrays it is called on. The errors are Keras's words.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class InputSpec:
    """The rank, dtype and shape an input must have (``None`` in a shape matches any size), as Keras's."""

    def __init__(
        self, dtype: Any = None, shape: Any = None, ndim: int | None = None, max_ndim: int | None = None,
        min_ndim: int | None = None, axes: dict | None = None, allow_last_axis_squeeze: bool = False,
        name: str | None = None, optional: bool = False,
    ) -> None:
        self.dtype = None if dtype is None else np.dtype(dtype).name
        self.shape = None if shape is None else tuple(shape)
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.axes = dict(axes or {})
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.name, self.optional = name, optional

    def __repr__(self) -> str:
        fields = ("dtype", "shape", "ndim", "max_ndim", "min_ndim", "axes")
        return "InputSpec(" + ", ".join(f"{f}={getattr(self, f)}" for f in fields if getattr(self, f)) + ")"


def check_against_spec(input_spec: Any, inputs: list, layer_name: str) -> None:
    """Raise Keras's ValueError when ``inputs`` (tensors, arrays or specs, in order) break ``input_spec``."""
    specs = list(input_spec) if isinstance(input_spec, (list, tuple)) else [input_spec]
    if len(inputs) != len(specs):
        raise ValueError(
            f"Layer '{layer_name}' expects {len(specs)} input(s), but it received {len(inputs)} tensors."
        )
    for index, (x, spec) in enumerate(zip(inputs, specs)):
        if spec is None or (x is None and spec.optional):
            continue
        shape = tuple(x.shape)
        where = (f"Input {index} with name '{spec.name}' of layer '{layer_name}' "
                 "is incompatible with the layer")
        if spec.ndim is not None and not spec.allow_last_axis_squeeze and len(shape) != spec.ndim:
            raise ValueError(f"{where}: expected ndim={spec.ndim}, found ndim={len(shape)}. "
                             f"Full shape received: {shape}")
        if spec.max_ndim is not None and len(shape) > spec.max_ndim:
            raise ValueError(f"{where}: expected max_ndim={spec.max_ndim}, found ndim={len(shape)}")
        if spec.min_ndim is not None and len(shape) < spec.min_ndim:
            raise ValueError(f"{where}: expected min_ndim={spec.min_ndim}, found ndim={len(shape)}. "
                             f"Full shape received: {shape}")
        if spec.dtype is not None and np.dtype(x.dtype).name != spec.dtype:
            raise ValueError(f"{where}: expected dtype={spec.dtype}, found dtype={np.dtype(x.dtype).name}")
        for axis, value in spec.axes.items():
            if value is not None and shape[axis] not in (value, None):
                raise ValueError(f"{where}: expected axis {axis} of input shape to have value {value}, "
                                 f"but received input with shape {shape}")
        if spec.shape is not None:
            given, wanted = shape, spec.shape
            if spec.allow_last_axis_squeeze:
                given = given[:-1] if given and given[-1] == 1 else given
                wanted = wanted[:-1] if wanted and wanted[-1] == 1 else wanted
            if any(w is not None and g is not None and w != g for w, g in zip(wanted, given)):
                raise ValueError(f"{where}: expected shape={spec.shape}, found shape={shape}")
