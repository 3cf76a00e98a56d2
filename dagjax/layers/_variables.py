"""Keras's weight objects: ``layer.weights`` / ``model.weights`` as views onto a params pytree.

A :class:`Variable` holds no array. It names one weight (its layer and key)
and finds the value when asked:

1. inside a running ``call`` of a Keras-style layer, in the params and state
   being traced (the binding scope, ``layers._keras_scope``);
2. otherwise in the weights' *holder*: the model the variable was read from
   (``model.weights``), or the layer's home, the last model built with the
   layer among its ``layers`` (a wrapper's or a custom layer's sublayers live
   under their container's home);
3. a layer in no model holds its own weights, made with the default seed on
   first use (as a ``Model`` does), so a standalone layer can be called on
   arrays and read like a Keras one.

``assign`` writes through to the holder's pytree (a new tree with the one leaf
replaced), so ``model.params`` sees it. ``path`` follows Keras: the names of the
layers holding the weight up to the nearest model, then the weight's name
(``dense/kernel``, ``lstm/lstm_cell/kernel``, ``mlp_block/linear/variable``).
"""

from __future__ import annotations

import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax._naming import default_seed, to_snake_case
from dagjax.layers._keras_scope import assign_bound, bound_value

_RNN_CELL_LAYERS = ("LSTM", "GRU", "SimpleRNN")  # Keras keeps their weights in a cell: lstm/lstm_cell/kernel


def _is_model_root(layer: Any) -> bool:
    """Whether ``layer`` holds the weights of the layers inside it (a model): paths restart below it."""
    return hasattr(layer, "weights_view")


def _cell_scope(layer: Any) -> tuple:
    """The extra path part Keras puts before an RNN layer's own weights (its cell's name), else none."""
    for cls in type(layer).__mro__:
        if cls.__name__ in _RNN_CELL_LAYERS and cls.__module__ == "dagjax.layers._recurrent":
            return (f"{to_snake_case(cls.__name__)}_cell",)
    return ()


class _OwnWeights:
    """The weights of a layer that is in no model: made with the default seed on first use."""

    def __init__(self, layer: Any) -> None:
        self._layer = layer
        self._trees: tuple[dict, dict] | None = None
        self._count = 0

    def weights_view(self) -> tuple[dict, dict]:
        count = self._layer.count_params()
        if self._trees is None or count != self._count:  # new weights since (a build after __init__'s)
            fresh = self._layer.init_weights(jax.random.key(default_seed()), (self._layer.name,))
            self._trees = fresh if self._trees is None else _overlaid(fresh, self._trees)
            self._count = count
        return self._trees

    def restore_weights(self, params: dict, state: dict, shared: bool = False) -> None:
        self._trees = (params, state)


def _overlaid(fresh: Any, old: Any) -> Any:
    """``fresh`` with the values ``old`` already had (same key, same shape) kept."""
    if isinstance(fresh, (tuple, dict)) and isinstance(old, type(fresh)):
        if isinstance(fresh, tuple):
            return tuple(_overlaid(f, o) for f, o in zip(fresh, old))
        return {k: _overlaid(v, old[k]) if k in old else v for k, v in fresh.items()}
    return old if getattr(old, "shape", None) == getattr(fresh, "shape", ()) else fresh


def home_of(layer: Any) -> tuple[Any, tuple, tuple]:
    """``(holder, tree_path, keras_scope)`` of ``layer``'s weights: where they are, how Keras names them."""
    home = layer.__dict__.get("_weights_home")
    if home is not None:
        holder = home[0]()
        if holder is not None:
            return holder, home[1], home[2]
    if not layer.built and not layer.weight_specs:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) has no weights yet: they get their shapes "
            "when the layer is first called (on a symbolic tensor or on arrays)."
        )
    own = layer.__dict__.get("_own_weights")
    if own is None:
        own = layer.__dict__["_own_weights"] = _OwnWeights(layer)
        settle(layer, own, (), (layer.name,))
    return own, (), (layer.name,)


def settle(layer: Any, holder: Any, tree_path: tuple, scope: tuple) -> None:
    """Make ``holder`` (at ``tree_path``) the home of ``layer``'s weights and of its sublayers'."""
    ref = holder if isinstance(holder, weakref.ref) else weakref.ref(holder)
    layer.__dict__["_weights_home"] = (ref, tree_path, scope)
    for name, sub in layer.sublayers.items():
        if not _is_model_root(sub):
            settle(sub, ref, (*tree_path, name), (*scope, name))


def settle_model_layers(model: Any) -> None:
    """Make ``model`` the home of the weights of the layers it lists (nested models keep their own)."""
    for name, layer in model.sublayers.items():
        if not _is_model_root(layer):
            settle(layer, model, (name,), (name,))


def keras_path(root: Any, tree_path: tuple) -> str:
    """Keras's ``path`` of the weight at ``tree_path`` under ``root``: nested models out, RNN cells in."""
    parts: list[str] = []
    layer = root
    for key in tree_path[:-1]:
        layer = layer.sublayers[key]
        parts = [] if _is_model_root(layer) else [*parts, key]
    return "/".join([*parts, *_cell_scope(layer), tree_path[-1]])


def _read(tree: dict, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def replaced(tree: dict, path: tuple, value: Any) -> dict:
    """A copy of ``tree`` with the leaf at ``path`` replaced (only the dicts on the path are copied)."""
    if not path:
        return value
    return {**tree, path[0]: replaced(tree.get(path[0], {}), path[1:], value)}


class Variable:
    """One weight of a layer, as Keras's ``Variable``: ``path``, ``name``, ``shape``, ``dtype``,
    ``trainable``, ``value``, ``numpy()``, ``assign``. A view: the array lives in a params pytree.
    """

    def __init__(self, layer: Any, name: str, shape: tuple, dtype: Any, trainable: bool,
                 where: tuple | None = None) -> None:
        self._layer = layer
        self.name = name
        self.shape = tuple(shape)
        self._dtype = np.dtype(dtype)
        self._trainable = bool(trainable)
        self._where = where  # (holder, tree_path) when read from a model; else the layer's home

    # ------------------------------------------------------------------ what it is
    @property
    def dtype(self) -> str:
        """The dtype's name, as Keras gives it (``"float32"``)."""
        return self._dtype.name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def trainable(self) -> bool:
        """Whether training updates it: a trainable weight of a layer that is not frozen (as Keras)."""
        return self._trainable and self._layer.trainable

    @property
    def collection(self) -> str:
        """``"params"`` for a trainable weight, ``"state"`` otherwise: the pytree it lives in."""
        return "params" if self._trainable else "state"

    def _location(self) -> tuple[Any, tuple, str]:
        """``(holder, tree_path, keras_path)``."""
        if self._where is not None:
            holder, tree_path = self._where
            return holder, tree_path, keras_path(holder, tree_path)
        holder, tree_path, scope = home_of(self._layer)
        return holder, (*tree_path, self.name), "/".join([*scope, *_cell_scope(self._layer), self.name])

    @property
    def path(self) -> str:
        """Keras's path: the layers holding it up to the nearest model, then its name (``dense/kernel``)."""
        return self._location()[2]

    # ------------------------------------------------------------------ its value
    @property
    def value(self) -> jax.Array:
        """The current array: the traced one inside a running ``call``, else the holder's."""
        found = bound_value(self)
        if found is not None:
            return found
        holder, tree_path, _ = self._location()
        trees = dict(zip(("params", "state"), holder.weights_view()))
        return _read(trees[self.collection], tree_path)

    def numpy(self) -> np.ndarray:
        """The current value as a numpy array (outside a running ``call``: there it has no value yet)."""
        value = self.value
        if isinstance(value, jax.core.Tracer):
            raise TypeError(
                f"Weight '{self.path}'.numpy() was called inside a compiled call, where it has no value yet; "
                "compute with the weight itself (jax.numpy functions take `weight.value`)."
            )
        return np.asarray(value)

    def assign(self, value: Any) -> Variable:
        """Set the weight: in a running ``call``, its new state for this step; else in its holder's pytree."""
        value = jnp.asarray(value, self._dtype)
        if value.shape != self.shape:
            raise ValueError(
                f"Weight '{self.path}' has shape {self.shape}; assign got a value of shape {value.shape}."
            )
        if assign_bound(self, value):
            return self
        holder, tree_path, _ = self._location()
        params, state = holder.weights_view()
        if self._trainable:
            params = replaced(params, tree_path, value)
        else:
            state = replaced(state, tree_path, value)
        holder.restore_weights(params, state, shared=True)
        return self

    def assign_add(self, value: Any) -> Variable:
        return self.assign(self.value + jnp.asarray(value, self._dtype))

    def assign_sub(self, value: Any) -> Variable:
        return self.assign(self.value - jnp.asarray(value, self._dtype))

    # ------------------------------------------------------------------ used as an array
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __getitem__(self, index: Any) -> Any:
        return self.value[index]

    def __len__(self) -> int:
        return self.shape[0]

    def astype(self, dtype: Any) -> jax.Array:
        return self.value.astype(dtype)

    @property
    def T(self) -> jax.Array:  # noqa: N802 (numpy's name)
        return self.value.T

    def __repr__(self) -> str:
        try:
            where = f"path={self.path}"
        except ValueError:
            where = f"name={self.name}"
        return f"<Variable {where}, shape={self.shape}, dtype={self.dtype}>"


def _binary(op: Any, reflected: bool = False) -> Any:
    if reflected:
        return lambda self, other: op(_unwrap(other), self.value)
    return lambda self, other: op(self.value, _unwrap(other))


def _unwrap(x: Any) -> Any:
    return x.value if isinstance(x, Variable) else x


def unwrap_variables(tree: Any) -> Any:
    """``tree`` with every :class:`Variable` leaf replaced by its value (a ``call`` may return one)."""
    return jax.tree_util.tree_map(_unwrap, tree, is_leaf=lambda x: isinstance(x, Variable))


for _name, _op in {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b, "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b,
    "pow": lambda a, b: a**b, "matmul": lambda a, b: a @ b,
}.items():
    setattr(Variable, f"__{_name}__", _binary(_op))
    setattr(Variable, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in {
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}.items():
    setattr(Variable, f"__{_name}__", _binary(_op))
Variable.__neg__ = lambda self: -self.value
Variable.__abs__ = lambda self: abs(self.value)
