"""Models whose graph is made from the first input they see, as Keras builds them.

A ``Sequential`` started without an input shape and a subclassed model (a
``Model`` subclass with a ``call``) know their layers but not their inputs'
shapes. They build their graph on ``build(input_shape)``, on the first data
given to ``fit`` / ``evaluate`` / ``predict`` / a call, or when called on a
symbolic tensor; a ``compile`` before that takes effect then, as Keras's does.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from dagjax._graph import is_symbolic
from dagjax.layers import Input, TensorSpec


class GraphOnFirstData:
    """The waiting: ``compile`` held until the graph exists, ``build`` and data that make it."""

    _pending_compile: tuple[tuple, dict] | None = None  # compile's arguments, until built
    _layers: list
    _session: Any
    name: str

    def _awaiting_graph(self) -> bool:
        """Whether the graph is still to be made from the first input (False: it exists, or never will)."""
        return False

    def _make_graph(self, inputs: Any) -> None:
        """Make the graph on ``inputs``, a structure of fresh ``Input`` tensors."""
        raise NotImplementedError

    def _missing_input_hint(self) -> str:
        return "call model.build(input_shape) or give it data first"

    def build(self, input_shape: Any = None) -> None:
        """Make the graph for ``input_shape`` (batch dim first; a list or dict for several inputs)."""
        if self._awaiting_graph():
            if input_shape is None:
                raise ValueError(f"Model '{self.name}' needs an input shape to build.")
            self._make_graph(inputs_for(input_shape, lambda shape: (tuple(shape), np.float32)))
        self._finish_compile()

    def _finish_compile(self) -> None:
        if self._pending_compile is not None and not self._awaiting_graph():
            args, kwargs = self._pending_compile
            self._pending_compile = None
            super().compile(*args, **kwargs)

    @property
    def compiled(self) -> bool:
        """Whether ``compile`` has been called (it may wait for the model to be built)."""
        return self._session is not None or self._pending_compile is not None

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """As Keras's ``compile``; before the graph exists it takes effect when the model is built."""
        if self._awaiting_graph():
            self._refuse_step_overrides()
            self._pending_compile = (args, kwargs)
        else:
            super().compile(*args, **kwargs)

    def _compiled_session(self, what: str) -> Any:
        if self._pending_compile is not None:
            self._require_graph()  # compiled, but not built: say how to give it an input shape
        return super()._compiled_session(what)

    def _build_for_data(self, x: Any) -> None:
        """With no graph yet, build it for ``x``'s shapes past the batch axis (Keras: on first data)."""
        if self._awaiting_graph() and _has_shapes(x):
            self._make_graph(inputs_for(x, lambda a: ((None, *np.shape(a)[1:]), _input_dtype(a))))
            self._finish_compile()

    def _require_graph(self) -> None:
        if self._awaiting_graph():
            raise ValueError(f"Model '{self.name}' has no input shape yet: {self._missing_input_hint()}.")


def _is_tensor(x: Any) -> bool:
    return is_symbolic(x) or isinstance(x, TensorSpec)


def _has_shapes(x: Any) -> bool:
    leaves = jax.tree_util.tree_leaves(x, is_leaf=_is_tensor)
    return bool(leaves) and all(len(getattr(leaf, "shape", ())) >= 1 for leaf in leaves)


def _input_dtype(x: Any) -> Any:
    """The Input dtype for data: integers as int32 (ids for Embedding), floats as float32, as Keras."""
    dtype = np.dtype(getattr(x, "dtype", np.float32))
    if np.issubdtype(dtype, np.integer):
        return np.int32
    return dtype if dtype == np.bool_ else np.float32


def inputs_for(structure: Any, shape_and_dtype: Any) -> Any:
    """Fresh ``Input`` tensors shaped like ``structure`` (arrays, specs or shapes; one, a list or a dict).

    A dict's Inputs take its keys as names, so data keyed by name finds them.
    """
    def make(leaf: Any, name: str | None = None) -> Any:
        if _is_tensor(leaf):
            return Input(batch_shape=tuple(leaf.shape), dtype=leaf.dtype, name=name)
        shape, dtype = shape_and_dtype(leaf)
        return Input(batch_shape=shape, dtype=dtype, name=name)

    if _is_tensor(structure):
        return make(structure)
    if isinstance(structure, dict):
        return {key: make(value, key) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)) and not _is_shape(structure):
        return [make(item) for item in structure]
    return make(structure)


def _is_shape(value: Any) -> bool:
    is_dim = lambda d: d is None or isinstance(d, (int, np.integer))
    return isinstance(value, (tuple, list)) and all(map(is_dim, value))
