"""``Sequential``: a plain stack of layers, a ``Model`` whose graph grows as layers are added."""

from __future__ import annotations

from typing import Any

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

    def _awaiting_graph(self) -> bool:
        return self._input_tensor is None

    def _make_graph(self, inputs: Any) -> None:
        if not is_symbolic(inputs):
            raise ValueError(f"Sequential '{self.name}' takes one input, got {type(inputs).__name__}.")
        self._input_tensor = inputs
        if self._stack:
            self._rebuild()

    def _missing_input_hint(self) -> str:
        return "start it with dj.Input(shape=...), call model.build((None, ...)), or give it arrays first"

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

    def _build_graph(self, inputs: Any, outputs: Any) -> None:
        if not self._stack:
            return
        super()._build_graph(inputs, outputs)
