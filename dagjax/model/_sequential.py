"""``Sequential``: a plain stack of layers, a ``Model`` whose graph grows as layers are added."""

from __future__ import annotations

from typing import Any

import jax

from dagjax._graph import SymbolicTensor, is_symbolic
from dagjax._naming import unique_name
from dagjax.layers import Input, InputLayer, Layer
from dagjax.model._config import sequential_config, sequential_from_config
from dagjax.model._functional import Model


class Sequential(Model):
    """A plain stack of layers; ``add`` appends one.

    Start it with ``dj.Input(shape=...)`` (or a first layer's ``input_shape=``,
    or call ``build(input_shape)``) so every layer knows its input shape as
    soon as it is added. Without one it builds, as Keras's does, on the first
    data it is given (``fit``, ``evaluate``, ``predict``...), and a ``compile``
    before that takes effect then.
    """

    def __init__(self, layers: list | None = None, name: str | None = None, trainable: bool = True) -> None:
        Layer.__init__(
            self, name=name if name is not None else unique_name("sequential"), trainable=trainable
        )
        self._stack: list[Layer] = []
        self._input_tensor: SymbolicTensor | None = None
        self._pending_compile: tuple[tuple, dict] | None = None  # compile's arguments, until built
        self.input_names: list[str] = []
        self.output_names: list[str] = []  # the last layer's name once one is added
        self._reset_weights()
        self._layers = []
        self._nodes = []
        self._sublayers = {}
        self._weight_specs = None
        for layer in layers or []:
            self.add(layer)

    @property
    def trainable(self) -> bool:
        """As ``Layer.trainable``; setting it reaches every added layer, built into the graph or not yet."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        Layer.trainable.fset(self, value)
        for layer in self._stack:
            layer.trainable = value

    def add(self, layer: Layer | SymbolicTensor) -> None:
        """Append a layer (or, first, an ``Input`` tensor)."""
        if is_symbolic(layer):
            if self._stack or self._input_tensor is not None:
                raise ValueError(f"Sequential '{self.name}': an Input can only come first.")
            self._input_tensor = layer
            return
        if isinstance(layer, InputLayer):
            self.add(layer.output)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential '{self.name}' takes layers, got {type(layer).__name__}.")
        if any(existing is layer for existing in self._stack):
            raise ValueError(f"Layer '{layer.name}' is already in Sequential '{self.name}'.")
        if not self._stack and self._input_tensor is None and layer._input_shape_arg is not None:
            self._input_tensor = Input(shape=layer._input_shape_arg)
        self._stack.append(layer)
        if self._input_tensor is not None:
            self._rebuild(layer)
        else:
            self.output_names = [layer.name]  # known before the graph is: compile can come first
        self._params = self._state = self._jitted_apply = None  # the graph changed: new weights

    def _rebuild(self, new_layer: Layer | None = None) -> None:
        out = self.outputs[0] if self._layers else self._input_tensor
        for layer in [new_layer] if new_layer is not None and self._layers else self._stack:
            out = layer(out)
            if isinstance(out, (list, tuple)):
                raise ValueError(
                    f"Layer '{layer.name}' returns {len(out)} tensors; a Sequential needs one per "
                    "layer. Use the functional API (dj.Model) instead."
                )
        self._build_graph(self._input_tensor, out)

    def build(self, input_shape: tuple | None = None) -> None:
        """Give a Sequential started without an Input its input shape (batch dim included)."""
        if self._input_tensor is None:
            if input_shape is None:
                raise ValueError(f"Sequential '{self.name}' needs an input shape to build.")
            self._input_tensor = Input(batch_shape=tuple(input_shape))
            if self._stack:
                self._rebuild()
        if self._pending_compile is not None and self._layers:
            args, kwargs = self._pending_compile
            self._pending_compile = None
            super().compile(*args, **kwargs)

    @property
    def compiled(self) -> bool:
        """Whether ``compile`` has been called (it may wait for the model to be built)."""
        return self._session is not None or self._pending_compile is not None

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """As ``Model.compile``; with no input shape yet, it takes effect when the model is built."""
        if self._layers or not self._stack:
            super().compile(*args, **kwargs)
        else:
            self._refuse_step_overrides()
            self._pending_compile = (args, kwargs)

    def _compiled_session(self, what: str) -> Any:
        if self._pending_compile is not None:
            self._require_graph()  # compiled, but not built: say how to give it an input shape
        return super()._compiled_session(what)

    def _build_for_data(self, x: Any) -> None:
        """With no input shape yet, build for ``x``'s shape past the batch axis (Keras: on first data)."""
        shape = getattr(x, "shape", None)
        if not self._layers and self._stack and shape is not None and len(shape) >= 1:
            self.build((None, *tuple(shape)[1:]))

    def _require_graph(self) -> None:
        if not self._layers:
            raise ValueError(
                f"Sequential '{self.name}' has no input shape yet: start it with "
                "dj.Input(shape=...), call model.build((None, ...)), or give it arrays first."
            )

    @property
    def layers(self) -> list[Layer]:
        """The layers added, without the InputLayer (as Keras)."""
        return list(self._stack)

    def get_config(self) -> dict:
        """Keras's Sequential config: the input (if any yet) and the list of layers (JSON data)."""
        return sequential_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        """The Sequential a ``get_config()`` describes, with fresh weights (as Keras's)."""
        return sequential_from_config(cls, config, custom_objects)

    def init(self, rng: jax.Array | None = None, *input_specs: Any) -> tuple[dict, dict]:
        """As ``Model.init``; a Sequential with no input shape yet first builds from ``input_specs[0]``."""
        if not self._layers and input_specs:
            self.build(input_specs[0].shape)
        self._require_graph()
        return super().init(rng)

    def flat_inputs(self, inputs: Any, symbolic: bool = False) -> list:
        """As ``Model.flat_inputs``; a Sequential with no input shape yet builds from a symbolic input."""
        if not self._layers and symbolic:
            self.build(inputs.shape)
        self._require_graph()
        return super().flat_inputs(inputs, symbolic)

    def _build_graph(self, inputs: Any, outputs: Any) -> None:
        if not self._stack:
            return
        super()._build_graph(inputs, outputs)
