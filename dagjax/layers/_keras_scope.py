"""The binding scope: inside a Keras-style ``call``, weights are the params and state being traced.

As Keras 3's ``StatelessScope``: while a Keras-style layer's ``call`` runs
under ``apply``, a :class:`BindingScope` on a per-thread stack maps the
layer's weights (and its sublayers') to the ``params`` and ``state`` trees
given to ``apply``. A trainable weight read as an attribute (``self.kernel``)
is the traced array itself; a non-trainable one stays a ``Variable`` whose
``value`` and ``assign`` go to the scope's state, which ``apply`` returns as
the new state. ``add_loss`` values and sublayers' activity penalties gather
in the nearest scope or :func:`collect_losses` block. Nothing outlives the
trace: the scope is opened and closed inside the traced function.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp

_stack = threading.local()
_DRAWS_BASE = 1 << 30  # random draws fold keys far from the sublayer calls' 0, 1, 2...


class UntraceableCallError(TypeError):
    """A Keras-style ``call`` does what a compiled pure program cannot; the message says what to write."""


def trainable_assign_message(layer: Any) -> str:
    """Why ``call`` may not assign a trainable weight, and what to write instead."""
    return (
        f"Layer '{layer.name}' ({type(layer).__name__}).call assigns to a trainable weight. In dagjax only "
        "the optimizer updates trainable weights (they are the params being differentiated; inside call "
        "they are plain arrays). For a value that call updates, create the weight with "
        "`self.add_weight(..., trainable=False)`: it lives in the state, and `assign` sets its new value."
    )


def _scopes() -> list:
    if not hasattr(_stack, "items"):
        _stack.items = []
    return _stack.items


class LossCollector:
    """Where ``add_loss`` values go: a list of scalars."""

    def __init__(self) -> None:
        self.losses: list = []

    def total(self) -> Any:
        """Their sum (the Python ``0.0`` for none, so that no op is traced)."""
        total = 0.0
        for loss in self.losses:
            total = total + loss
        return total


class BindingScope(LossCollector):
    """One running ``call`` of ``layer``: its params, its (updated) state, training mode and rng."""

    def __init__(self, layer: Any, params: dict, state: dict, training: bool, rng: Any,
                 declaring: bool = False) -> None:
        super().__init__()
        self.layer = layer
        self.params = params
        self.state = _copy_dicts(state)
        self.training = training
        self.rng = rng
        self.declaring = declaring  # first call: sublayers build on the shapes they are called on
        self.calls = 0  # sublayer calls so far, each folding its own rng
        self.draws = 0  # dagjax.random draws so far, each folding its own key from _DRAWS_BASE on
        self.builtin_options: dict = {}  # a built-in's apply options for super().call (``_builtin_call``)
        self._paths: dict[int, tuple] | None = None

    def path_of(self, layer: Any) -> tuple | None:
        """The key path from this scope's layer to ``layer`` (``()`` for itself), None if not under it."""
        if self._paths is None:
            self._paths = {}
            pending = [(self.layer, ())]
            while pending:
                node, path = pending.pop()
                self._paths.setdefault(id(node), path)
                pending.extend((sub, (*path, name)) for name, sub in node.sublayers.items())
        return self._paths.get(id(layer))

    def subtrees(self, layer: Any, path: tuple) -> tuple[dict, dict]:
        """``(params, state)`` of the sublayer at ``path`` (zeros of its shapes while declaring)."""
        if self.declaring:
            zeros = lambda tree: jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), tree)
            return zeros(layer.abstract_weights(True)), zeros(layer.abstract_weights(False))
        return _get(self.params, path), _get(self.state, path)

    def set_state(self, path: tuple, value: dict) -> None:
        """Record a sublayer's (or this layer's weight's) new state at ``path``."""
        if not path:
            self.state = value
            return
        node = self.state
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    def next_random_key(self) -> Any:
        """A fresh key for a ``dagjax.random`` draw in ``call`` (None without an rng).

        Drawing while the layer is being declared marks it as one that draws, so models give it an rng.
        """
        if self.declaring:
            self.layer.__dict__["_draws_random"] = True
        if self.rng is None:
            return None
        self.draws += 1
        return jax.random.fold_in(self.rng, _DRAWS_BASE + self.draws)

    def sublayer_rng(self) -> Any:
        """A key of its own for the next sublayer call (None when the call has none)."""
        self.calls += 1
        return None if self.rng is None else jax.random.fold_in(self.rng, self.calls)


def _get(tree: dict, path: tuple) -> Any:
    for key in path:
        tree = tree.get(key, {}) if isinstance(tree, dict) else {}
    return tree


def _copy_dicts(tree: Any) -> Any:
    return {k: _copy_dicts(v) for k, v in tree.items()} if isinstance(tree, dict) else tree


def current() -> LossCollector | None:
    """The innermost open scope or collector, if any."""
    items = _scopes()
    return items[-1] if items else None


def innermost_binding() -> BindingScope | None:
    """The innermost running ``call``'s scope, if any."""
    for item in reversed(_scopes()):
        if isinstance(item, BindingScope):
            return item
    return None


@contextlib.contextmanager
def opened(scope: LossCollector) -> Iterator[LossCollector]:
    """Make ``scope`` the innermost for the block; its losses pass to the enclosing one when it closes."""
    items = _scopes()
    items.append(scope)
    try:
        yield scope
    finally:
        items.pop()
    if isinstance(scope, BindingScope) and items:
        items[-1].losses.extend(scope.losses)


@contextlib.contextmanager
def collect_losses() -> Iterator[LossCollector]:
    """Gather the ``add_loss`` values of the Keras-style layers run in the block (a model's apply)."""
    items = _scopes()
    collector = LossCollector()
    items.append(collector)
    try:
        yield collector
    finally:
        items.pop()


def _binding_for(variable: Any) -> tuple[BindingScope, tuple] | None:
    for item in reversed(_scopes()):
        if isinstance(item, BindingScope):
            path = item.path_of(variable._layer)
            if path is not None:
                return item, (*path, variable.name)
    return None


def bound_value(variable: Any) -> Any:
    """The value ``variable`` has in the innermost running ``call`` that holds it, else None."""
    found = _binding_for(variable)
    if found is None:
        return None
    scope, path = found
    if scope.declaring:
        return jnp.zeros(variable.shape, variable._dtype)
    tree = scope.params if variable._trainable else scope.state
    return _get(tree, path)


def assign_bound(variable: Any, value: Any) -> bool:
    """Inside a running ``call``: make ``value`` the weight's new state and say True; else False."""
    found = _binding_for(variable)
    if found is None:
        return False
    scope, path = found
    if variable._trainable:
        raise UntraceableCallError(trainable_assign_message(scope.layer))
    if not scope.declaring:
        scope.set_state(path, value)
    return True
