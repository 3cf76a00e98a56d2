"""The weights a ``Model`` holds: ``params`` / ``state``, Keras's ``get_weights`` / ``set_weights``,
and the hand-off to a training session.

The model makes its weights with the default seed on first use. A running
``fit`` takes them (``lend_weights``) and gives them back at the end
(``restore_weights``), as Keras's JAX trainer purges the model's variables for
the loop and syncs them back after it; meanwhile callbacks read a view. Who
may still hold the trees is tracked so that a session whose steps donate their
buffers copies them first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import jax.numpy as jnp
import numpy as np


class ModelWeights:
    """``params``, ``state``, ``get_weights`` / ``set_weights`` and the hand-off to a fit, for ``Model``."""

    # Set by Model: its name, fresh weights (``init``) and Keras's weight order (``Layer.weight_paths``).
    name: str
    init: Callable[[], tuple[dict, dict]]
    weight_paths: Callable[[], Iterator[tuple[str, tuple]]]
    _params: dict | None
    _state: dict | None
    _weights_shared: bool  # whether params/state were handed out since the model got them
    _lent: bool  # whether a running fit holds them

    def _weights(self) -> tuple[dict, dict]:
        """``(params, state)``, made with the default seed on first use."""
        if self._params is None:
            if self._lent:
                raise RuntimeError(
                    f"Model '{self.name}' has no weights to give: a running fit holds them (read them from "
                    "a callback hook, or once fit returns), or a step failed on the device after consuming "
                    "them (dj.config.switches.keep_start_state = True keeps a copy to fall back on)."
                )
            self._params, self._state = self.init()
            self._reuse_nested_weights()
        return self._params, self._state

    def _reuse_nested_weights(self) -> None:
        """Put each nested model's own weights in place of the fresh ones just made for it.

        Calling a model reuses its weights, as in Keras (the Functional API guide's ensemble of
        three models averages their own predictions). Both models then hold the same arrays, so
        both are marked shared: a fit that donates its buffers copies them first.
        """
        for layer in getattr(self, "layers", ()):
            if layer is self or not isinstance(layer, ModelWeights) or layer._lent:
                continue
            if layer.name in self._params:
                self._params[layer.name] = layer.params
            if layer.name in self._state:
                self._state[layer.name] = layer.state
            self._weights_shared = True

    @property
    def params(self) -> dict:
        """Trainable weights; created with a fixed default seed on first use."""
        self._weights_shared = True  # the caller may keep them: a fit copies them before updating in place
        return self._weights()[0]

    @params.setter
    def params(self, value: dict) -> None:
        self._weights()
        self._params, self._weights_shared = value, True

    @property
    def state(self) -> dict:
        """Non-trainable variables (e.g. BatchNormalization moving statistics)."""
        self._weights_shared = True
        return self._weights()[1]

    @state.setter
    def state(self, value: dict) -> None:
        self._weights()
        self._state, self._weights_shared = value, True

    def weights_view(self) -> tuple[dict, dict]:
        """``(params, state)`` for code that reads them now and keeps nothing (saving, evaluating).

        Unlike ``model.params``, this does not make the next ``fit`` copy them:
        a fit may update these very arrays in place.
        """
        return self._weights()

    def lend_weights(self) -> tuple[dict, dict, bool]:
        """``(params, state, shared)``, held by a training session until it calls :meth:`restore_weights`.

        ``shared`` says whether anyone outside the model may hold them (they were
        read or set through ``params`` / ``state``): a session whose steps
        donate their buffers copies such trees first.
        """
        params, state = self._weights()
        shared = self._weights_shared
        self._params = self._state = None
        self._lent = True
        return params, state, shared

    def restore_weights(self, params: dict, state: dict, shared: bool = False) -> None:
        """Hold ``params`` and ``state`` again (from a session or a file); ``shared`` as for lend_weights."""
        self._params, self._state, self._weights_shared, self._lent = params, state, shared, False

    def get_weights(self) -> list[np.ndarray]:
        """Every weight as numpy, in Keras's order and layouts."""
        params, state = self._weights()
        trees = {"params": params, "state": state}
        out = []
        for collection, path in self.weight_paths():
            node = trees[collection]
            for key in path:
                node = node[key]
            out.append(np.asarray(node))
        return out

    def set_weights(self, weights: list) -> None:
        """Load weights given in Keras's order (``keras_model.get_weights()`` works)."""
        paths = list(self.weight_paths())
        if len(weights) != len(paths):
            raise ValueError(f"Model '{self.name}' has {len(paths)} weights, set_weights got {len(weights)}.")
        params, state = self._weights()
        trees = {"params": _copy_tree(params), "state": _copy_tree(state)}
        for (collection, path), value in zip(paths, weights):
            parent = trees[collection]
            for key in path[:-1]:
                parent = parent[key]
            old = parent[path[-1]]
            value = np.asarray(value)
            if value.shape != old.shape:
                raise ValueError(
                    f"Weight '{'/'.join(path)}' of model '{self.name}' has shape {old.shape}, "
                    f"set_weights got {value.shape}."
                )
            parent[path[-1]] = jnp.asarray(value, old.dtype)
        self.restore_weights(trees["params"], trees["state"])


def _copy_tree(tree: dict) -> dict:
    return {k: _copy_tree(v) if isinstance(v, dict) else v for k, v in tree.items()}
