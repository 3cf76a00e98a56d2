"""``Input``: where a graph starts."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax._graph import Node, SymbolicTensor
from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec


class InputLayer(Layer):
    """The layer behind :func:`Input`; it has no weights and computes nothing.

    Its ``dtype`` is the input's (``int32`` for indices), not a policy's: as in
    Keras, a float input stays float32 under a mixed policy, and the layers
    reading it cast it to their compute dtype.
    """

    def __init__(
        self, batch_shape: tuple, dtype: Any = "float32", name: str | None = None, optional: bool = False
    ) -> None:
        super().__init__(name=name)
        self.optional = bool(optional)  # a model called on arrays may be given None for it (Keras 3)
        self._input_dtype = np.dtype(jnp.dtype(dtype or "float32"))
        self.batch_shape = tuple(batch_shape)
        self._weight_specs = []
        node = Node(self, (), TensorSpec(self.batch_shape, self.dtype))
        self._inbound_nodes.append(node)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the input's values."""
        return self._input_dtype

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The identity: a model feeds its inputs straight to the layers that read them."""
        return x

    def get_config(self) -> dict:
        """Keras's InputLayer config: name, ``batch_shape`` and dtype (no ``trainable``)."""
        config = {"name": self.name, "batch_shape": self.batch_shape, "dtype": self.dtype.name}
        return {**config, "optional": True} if self.optional else config

    @classmethod
    def from_config(cls, config: dict) -> InputLayer:
        """An InputLayer from its config, tolerating a missing dtype or name and a list ``batch_shape``
        (Keras 2's ``batch_input_shape`` too, which Keras 3 still reads)."""
        batch_shape = config["batch_shape"] if "batch_shape" in config else config["batch_input_shape"]
        optional = bool(config.get("optional", False))
        return cls(tuple(batch_shape), config.get("dtype", "float32"), config.get("name"), optional)


def Input(
    shape: tuple | None = None,
    dtype: Any = "float32",
    name: str | None = None,
    batch_size: int | None = None,
    batch_shape: tuple | None = None,
    optional: bool = False,
) -> SymbolicTensor:
    """A symbolic input: ``Input(shape=(32,))`` has shape ``(None, 32)``.

    Dims may be ``None`` (e.g. variable-length sequences: ``Input((None,), "int32")``).
    ``optional=True``: a model called on arrays may be given None for it, which its layers then get.
    """
    if batch_shape is None:
        if shape is None:
            raise ValueError("Input needs a `shape` (without the batch dim) or a `batch_shape`.")
        if isinstance(shape, int):
            shape = (shape,)
        batch_shape = (batch_size, *shape)
    for d in batch_shape:
        if d is not None and (not isinstance(d, int) or d <= 0):
            raise ValueError(f"Input shape dims must be positive ints or None, got {tuple(batch_shape)}.")
    layer = InputLayer(batch_shape, dtype=dtype or "float32", name=name, optional=optional)
    return layer.output
