"""Keras's layer methods for weights and losses, on every ``Layer`` (and so on every ``Model``).

``add_weight`` / ``add_variable`` / ``add_loss`` / ``build`` serve Keras-style
layers (``layers._keras_style``); ``weights``, ``trainable_weights``,
``non_trainable_weights`` (and Keras's ``*variables`` aliases),
``get_weights`` / ``set_weights`` and ``losses`` serve every layer, as
:class:`~dagjax.layers._variables.Variable` views in Keras's order.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from dagjax.layers import _keras_style
from dagjax.layers._keras_scope import innermost_binding
from dagjax.layers._variables import Variable, home_of, replaced


class KerasLayerAPI:
    """Keras's weight and loss methods; mixed into ``Layer``."""

    # ------------------------------------------------------------------ declaring (Keras-style layers)
    def build(self, input_shape: Any) -> None:
        """Create the weights for ``input_shape`` with ``add_weight`` (Keras-style layers override it)."""

    def add_weight(self, shape: Any = None, initializer: Any = None, dtype: Any = None,
                   trainable: bool = True,
                   autocast: bool = True, regularizer: Any = None, constraint: Any = None,
                   aggregation: str = "none", overwrite_with_gradient: bool = False,
                   name: str | None = None) -> Variable:
        """Declare a weight (in ``__init__`` or ``build``), as Keras's; returns its :class:`Variable`.

        A non-trainable weight lives in the model's ``state``: ``call`` may ``assign`` it.
        """
        self._require_keras_style("add_weight")
        return _keras_style.add_weight(
            self, shape, initializer, dtype, trainable, regularizer, constraint, name
        )

    def add_variable(self, shape: Any, initializer: Any, dtype: Any = None, trainable: bool = True,
                     autocast: bool = True, regularizer: Any = None, constraint: Any = None,
                     aggregation: str = "none", name: str | None = None) -> Variable:
        """Keras's other spelling of :meth:`add_weight`."""
        self._require_keras_style("add_variable")
        return _keras_style.add_weight(
            self, shape, initializer, dtype, trainable, regularizer, constraint, name
        )

    def add_loss(self, loss: Any) -> None:
        """Add ``loss`` (summed to a scalar) to the training loss, from inside ``call``, as Keras's."""
        scope = innermost_binding()
        if scope is None:
            raise RuntimeError(
                f"Layer '{self.name}'.add_loss was called outside call. dagjax adds a layer's losses from "
                "inside its call (they are computed from the tensors of that call): call add_loss there."
            )
        scope.losses.append(jnp.sum(jnp.asarray(loss, jnp.float32)))

    def _require_keras_style(self, what: str) -> None:
        if not self._keras_style:
            raise TypeError(
                f"{type(self).__name__}.{what}: this layer declares its weights with declare_weights "
                "(WeightSpec), the dagjax style; add_weight is for Keras-style layers (build(input_shape) "
                "and call(inputs)). Use one style per layer."
            )

    # ------------------------------------------------------------------ weight objects
    @property
    def weights(self) -> list[Variable]:
        """Every weight of the layer and its sublayers, in Keras's order (trainable first, per layer)."""
        if hasattr(self, "weights_view"):  # a model: views onto its own params and state
            return [_variable_of(self, path, where=(self, path)) for _, path in self.weight_paths()]
        return [_variable_of(self, path) for _, path in self.weight_paths()]

    def __getattr__(self, name: str) -> Any:
        """A built layer's own weight by name (``dense.kernel``), as Keras's layers have them."""
        if hasattr(type(self), name):  # a property that raised AttributeError: let its own message through
            return object.__getattribute__(self, name)
        if not name.startswith("_"):
            for spec in self.__dict__.get("_weight_specs") or ():
                if spec.name == name:
                    variable = _variable_of(self, (name,))
                    scope = innermost_binding()  # in its own running call: the traced array, as add_weight's
                    running = scope is not None and scope.layer is self and spec.trainable
                    return variable.value if running else variable
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    @property
    def trainable_weights(self) -> list[Variable]:
        """The weights training updates: none for a frozen layer, as Keras."""
        return [w for w in self.weights if w.trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """The other weights: statistics and frozen layers' weights, in ``weights`` order."""
        return [w for w in self.weights if not w.trainable]

    variables = weights
    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """The layer's weights as numpy arrays, in ``weights`` order."""
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights: list) -> None:
        """Set the layer's weights from arrays in ``weights`` order (Keras's checks: count, then shapes)."""
        paths = list(self.weight_paths())
        if len(weights) != len(paths):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list of length "
                f"{len(weights)}, but the layer was expecting {len(paths)} weights."
            )
        holder, base, _ = home_of(self)
        trees = dict(zip(("params", "state"), holder.weights_view()))
        for (collection, path), variable, value in zip(paths, self.weights, weights):
            value = np.asarray(value)
            if value.shape != variable.shape:
                raise ValueError(
                    f"Layer '{self.name}' weight '{variable.path}' has shape {variable.shape}, "
                    f"set_weights got shape {value.shape}."
                )
            value = jnp.asarray(value, variable._dtype)
            trees[collection] = replaced(trees[collection], (*base, *path), value)
        holder.restore_weights(trees["params"], trees["state"], shared=True)

    @property
    def losses(self) -> list:
        """``add_loss`` values of the last call on arrays, then weight regularizers' penalties (as Keras)."""
        found = list(self.__dict__.get("_keras_last_losses", []))
        for variable in self.weights:
            spec = next(w for w in variable._layer.weight_specs if w.name == variable.name)
            if spec.regularizer is not None and spec.trainable:
                found.append(spec.regularizer(variable.value))
        return found


def _variable_of(layer: Any, path: tuple, where: tuple | None = None) -> Variable:
    """The :class:`Variable` of the weight at ``path`` under ``layer`` (the owner's own unless ``where``)."""
    owner = layer
    for key in path[:-1]:
        owner = owner.sublayers[key]
    spec = next(w for w in owner.weight_specs if w.name == path[-1])
    # One object per weight and holder, so that `w in model.trainable_weights` and `is` work as in Keras:
    # a model's view of a weight whose home is that model is the layer's own object.
    home = owner.__dict__.get("_weights_home")
    if where is not None and home is not None and home[0]() is where[0] and (*home[1], spec.name) == where[1]:
        where = None
    if where is not None:
        cache, key = where[0].__dict__.setdefault("_model_variables", {}), where[1]
    else:
        cache, key = owner.__dict__.setdefault("_keras_variables", {}), spec.name
    found = cache.get(key)
    if found is None or found._layer is not owner or found.shape != tuple(spec.shape):
        found = cache[key] = Variable(owner, spec.name, spec.shape, spec.dtype, spec.trainable, where=where)
    return found
