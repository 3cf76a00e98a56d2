"""Wrappers: layers built around other layers (Bidirectional, TimeDistributed).

The wrapped layers are ``sublayers``: their parameters and state nest under
their names, and their weights come after the wrapper's own (it has none) in
Keras's ``get_weights`` order.
"""

from __future__ import annotations

import copy
from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._base import Layer, batch_mask_kwargs
from dagjax.layers._serialization import layer_from_config, layer_to_config
from dagjax.layers._specs import TensorSpec

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _copy_layer(layer: Layer, name: str, **changes: Any) -> Layer:
    """An unbuilt, uncalled copy of ``layer`` with a new name and some attributes changed."""
    clone = copy.copy(layer)
    Layer.__init__(clone, name=name, trainable=layer.trainable,
                   activity_regularizer=layer.activity_regularizer, dtype=layer.dtype_policy)
    for attr, value in changes.items():
        setattr(clone, attr, value)
    return clone


def _without_prefix(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards, then merges the two outputs.

    As Keras: the wrapped layer is copied as ``forward_<name>`` and (unless
    ``backward_layer`` is given) ``backward_<name>`` with ``go_backwards=True``;
    the backward sequence is flipped back to input order before merging.
    ``merge_mode`` is ``"concat"``, ``"sum"``, ``"mul"``, ``"ave"`` or ``None``
    (a list ``[forward, backward]``). With ``return_state`` the output is
    ``[output(s), *forward_states, *backward_states]``. Both directions read the
    input's Keras mask; with ``return_sequences`` masked steps output zeros
    (Keras forces ``zero_output_for_mask``) and the output keeps the mask.
    """

    supports_masking = True
    uses_input_mask = True

    def __init__(self, layer: Layer, merge_mode: str | None = "concat", backward_layer: Layer | None = None,
                 name: str | None = None, **kwargs: Any) -> None:
        for arg, value in (("layer", layer), ("backward_layer", backward_layer)):
            if value is not None and not all(hasattr(value, a) for a in ("go_backwards", "return_sequences")):
                raise TypeError(
                    f"Bidirectional {arg} must be a recurrent layer (SimpleRNN, LSTM, GRU), "
                    f"got {type(value).__name__}."
                )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Bidirectional merge_mode must be one of {list(_MERGE_MODES)}, got {merge_mode!r}."
            )
        super().__init__(name=name, **kwargs)
        self.merge_mode = merge_mode
        self.forward_layer = _copy_layer(layer, f"forward_{_without_prefix(layer.name, 'forward_')}")
        if backward_layer is None:
            backward_layer = _copy_layer(layer, f"backward_{_without_prefix(layer.name, 'backward_')}",
                                         go_backwards=True)
        self.backward_layer = backward_layer
        fwd, bwd = self.forward_layer, self.backward_layer
        if fwd.go_backwards == bwd.go_backwards:
            raise ValueError(
                f"Bidirectional '{self.name}': the forward and backward layers need different go_backwards, "
                f"both have go_backwards={fwd.go_backwards}."
            )
        for attr in ("return_sequences", "return_state"):
            if getattr(fwd, attr) != getattr(bwd, attr):
                raise ValueError(
                    f"Bidirectional '{self.name}': the forward and backward layers need the same {attr}, "
                    f"got {getattr(fwd, attr)} and {getattr(bwd, attr)}."
                )
        if fwd.name == bwd.name:
            raise ValueError(
                f"Bidirectional '{self.name}': forward and backward layers are both named {fwd.name!r}."
            )
        for direction in (fwd, bwd):
            direction.zero_output_for_mask = direction.return_sequences
        self.return_sequences = fwd.return_sequences
        self.return_state = fwd.return_state
        self.uses_rng = fwd.uses_rng or bwd.uses_rng
        self.uses_batch_mask = fwd.uses_batch_mask or bwd.uses_batch_mask

    @property
    def sublayers(self) -> dict[str, Layer]:
        """The forward and the backward layer, by their names (``forward_<name>``, ``backward_<name>``)."""
        return {self.forward_layer.name: self.forward_layer, self.backward_layer.name: self.backward_layer}

    @staticmethod
    def _split_states(initial_state: Any) -> tuple[tuple, tuple]:
        """Extra call arguments for each direction: the first half of the states goes forward."""
        if initial_state is None:
            return (), ()
        half = len(initial_state) // 2
        return (list(initial_state[:half]),), (list(initial_state[half:]),)

    def check_input(self, spec: TensorSpec, initial_state: Any = None) -> None:
        """``initial_state``, if given, must be a list of even length: forward states, then backward ones."""
        even_list = isinstance(initial_state, (list, tuple)) and len(initial_state) % 2 == 0
        if initial_state is not None and not even_list:
            raise self.input_error(
                "takes initial_state as a list of forward states then backward states (an even count)"
            )

    def declare_weights(self, spec: TensorSpec, initial_state: Any = None) -> list:
        """None of its own: builds the two directions, each with its half of ``initial_state``."""
        forward_states, backward_states = self._split_states(initial_state)
        self.forward_layer._ensure_built(spec, *forward_states)
        self.backward_layer._ensure_built(spec, *backward_states)
        return []

    def apply(
        self,
        params: dict,
        state: dict,
        x: jax.Array,
        initial_state: Any = None,
        training: bool = False,
        rng: jax.Array | None = None,
        mask: jax.Array | None = None,
        input_mask: Any = None,
    ) -> tuple[Any, dict]:
        """Both directions (split ``rng``), the backward sequence flipped back, merged by ``merge_mode``."""
        forward_states, backward_states = self._split_states(initial_state)
        sequence_mask = None if input_mask is None else input_mask[0]
        mask_kwargs = {} if sequence_mask is None else {"input_mask": (sequence_mask,)}
        rngs = (None, None) if rng is None else tuple(jax.random.split(rng))
        new_state = dict(state)
        results = []
        for layer, extra, key in ((self.forward_layer, forward_states, rngs[0]),
                                  (self.backward_layer, backward_states, rngs[1])):
            out, layer_state = layer.apply(params.get(layer.name, {}), state.get(layer.name, {}), x, *extra,
                                           training=training, rng=key, **batch_mask_kwargs(layer, mask),
                                           **mask_kwargs)
            if layer_state:
                new_state[layer.name] = layer_state
            results.append(out)
        y, y_rev = results
        states: list = []
        if self.return_state:
            states = [*y[1:], *y_rev[1:]]
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = jnp.flip(y_rev, axis=1)
        if self.merge_mode is None:
            return [y, y_rev, *states], new_state
        merged = {
            "concat": lambda: jnp.concatenate([y, y_rev], axis=-1),
            "sum": lambda: y + y_rev,
            "mul": lambda: y * y_rev,
            "ave": lambda: (y + y_rev) / 2,
        }[self.merge_mode]()
        return ([merged, *states] if self.return_state else merged), new_state

    def compute_mask(self, inputs: jax.Array, mask: Any = None) -> Any:
        """Keras's: the input's mask on each sequence output, none on a last step or on the states."""
        if self.return_sequences:
            output_mask = mask if self.merge_mode else [mask, mask]
        else:
            output_mask = None if self.merge_mode else [None, None]
        if not self.return_state:
            return output_mask
        states = [None] * (self.forward_layer.num_states + self.backward_layer.num_states)
        return (output_mask if isinstance(output_mask, list) else [output_mask]) + states

    def get_config(self) -> dict:
        """Keras's Bidirectional config: the forward and backward layers' full configs and ``merge_mode``."""
        return {
            **super().get_config(),
            "layer": layer_to_config(self.forward_layer),
            "merge_mode": self.merge_mode,
            "backward_layer": layer_to_config(self.backward_layer),
        }

    @classmethod
    def from_config(cls, config: dict) -> Bidirectional:
        """The nested layer configs rebuilt into layers first, custom classes resolved as in a model file."""
        config = dict(config)
        config["layer"] = layer_from_config(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = layer_from_config(config["backward_layer"])
        return cls(**config)


def _needs_steps_one_by_one(layer: Layer) -> bool:
    """Whether calling ``layer`` on each time step in turn differs from one call on all steps folded together.

    True when its training output mixes the rows of the batch (``uses_batch_mask``,
    as BatchNormalization) or it holds state (non-trainable weights), in itself
    or in a sublayer; a container's ``uses_batch_mask`` only passes the mask on.
    """
    mixes_rows = layer.uses_batch_mask and not layer.sublayers
    has_state = any(not w.trainable for w in layer.weight_specs)
    return mixes_rows or has_state or any(map(_needs_steps_one_by_one, layer.sublayers.values()))


class TimeDistributed(Layer):
    """Applies ``layer`` to every time step of ``(batch, time, ...)`` inputs.

    Keras 3 calls the layer once per step, in order (a Python loop over the
    time axis, which the JAX backend always knows at run time). dagjax does
    the same, as a ``lax.scan`` that threads the layer's state from step to
    step, for layers where that matters: BatchNormalization takes batch
    statistics per step and updates its moving statistics once per step. Other
    layers get all steps folded into the batch, one call on
    ``(batch * time, ...)`` (``TimeDistributed(Dense(n))`` is one matmul),
    which gives the same result. The padding mask goes to every step. The
    input's Keras mask passes through to the output, and, as in Keras, a
    wrapped layer that reads masks (an RNN, GlobalAveragePooling1D, a
    Keras-style ``call(inputs, mask=None)``) gets each step's slice of it.
    """

    supports_masking = True
    uses_input_mask = True

    min_ndim = 3

    def __init__(self, layer: Layer, name: str | None = None, **kwargs: Any) -> None:
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed needs a dagjax layer, got {type(layer).__name__}.")
        super().__init__(name=name, **kwargs)
        self.layer = layer
        self.uses_rng = layer.uses_rng
        self.uses_batch_mask = layer.uses_batch_mask

    @property
    def sublayers(self) -> dict[str, Layer]:
        """The wrapped layer, by its name."""
        return {self.layer.name: self.layer}

    def declare_weights(self, spec: TensorSpec) -> list:
        """None of its own: builds the wrapped layer for the folded spec ``(batch * time, ...)``.

        A wrapped layer that reads masks is built seeing the folded mask of the call being recorded.
        """
        step_masks = None
        call_masks = self.__dict__.get("_call_masks")
        if self.layer.uses_input_mask and call_masks is not None and call_masks[0] is not None:
            step_masks = (self._folded_mask_spec(spec, call_masks[0]),)
        self.layer.__dict__["_call_masks"] = step_masks
        try:
            self.layer._ensure_built(_folded_spec(spec))
        finally:
            self.layer.__dict__.pop("_call_masks", None)
        return []

    def _folded_mask_spec(self, spec: TensorSpec, mask: TensorSpec) -> TensorSpec:
        """``mask``'s spec with time folded into the batch; Keras's error for a mask that does not fit."""
        if len(mask.shape) < 2:
            raise self.input_error(
                f"takes a mask of at least 2 dimensions (batch_size, timesteps), got mask shape {mask.shape}"
            )
        if any(a is not None and b is not None and a != b for a, b in zip(mask.shape[:2], spec.shape[:2])):
            raise self.input_error(
                f"got a mask of shape {mask.shape} for inputs of shape {spec.shape}: the mask's first two "
                f"dimensions (batch size and timesteps) must be the input's, {spec.shape[:2]}"
            )
        return _folded_spec(mask)

    def apply(
        self,
        params: dict,
        state: dict,
        x: jax.Array,
        training: bool = False,
        rng: jax.Array | None = None,
        mask: jax.Array | None = None,
        input_mask: Any = None,
    ) -> tuple[Any, dict]:
        """The layer on every step: folded into the batch, or a ``lax.scan`` when steps must go in turn.

        ``input_mask``: the Keras mask of ``x``; each step's slice goes to a wrapped layer that reads masks.
        """
        name = self.layer.name
        layer_params, layer_state = params.get(name, {}), state.get(name, {})
        mask_kwargs = batch_mask_kwargs(self.layer, mask)
        keras_mask = input_mask[0] if input_mask is not None and self.layer.uses_input_mask else None
        if _needs_steps_one_by_one(self.layer):

            def step(carry, inputs):
                x_t, t, mask_t = inputs
                step_rng = None if rng is None else jax.random.fold_in(rng, t)
                step_kwargs = {} if mask_t is None else {"input_mask": (mask_t,)}
                out, carry = self.layer.apply(layer_params, carry, x_t, training=training, rng=step_rng,
                                              **mask_kwargs, **step_kwargs)
                return carry, out

            time_first = [jnp.swapaxes(x, 0, 1), jnp.arange(x.shape[1]), None]
            if keras_mask is not None:
                time_first[2] = jnp.swapaxes(keras_mask, 0, 1)
            layer_state, out = jax.lax.scan(step, layer_state, tuple(time_first))
            out = jax.tree_util.tree_map(lambda y: jnp.swapaxes(y, 0, 1), out)
        else:
            batch, time = x.shape[:2]
            if mask_kwargs:
                mask_kwargs = {"mask": jnp.repeat(mask, time)}  # one entry per folded row (sample, step)
            if keras_mask is not None:
                mask_kwargs["input_mask"] = (_fold(keras_mask),)
            out, layer_state = self.layer.apply(layer_params, layer_state, _fold(x), training=training,
                                                rng=rng, **mask_kwargs)
            out = jax.tree_util.tree_map(lambda y: y.reshape(batch, time, *y.shape[1:]), out)
        return out, ({**state, name: layer_state} if layer_state else state)

    def get_config(self) -> dict:
        """The base config plus the wrapped layer's full config under ``layer``, as Keras's."""
        return {**super().get_config(), "layer": layer_to_config(self.layer)}

    @classmethod
    def from_config(cls, config: dict) -> TimeDistributed:
        """The nested layer config rebuilt into a layer first, custom classes resolved as in a model file."""
        return cls(**{**config, "layer": layer_from_config(config["layer"])})


def _folded_spec(spec: TensorSpec) -> TensorSpec:
    """``(batch, time, ...)`` as ``(batch * time, ...)`` (None where either is unknown)."""
    batch, time, *rest = spec.shape
    steps = None if batch is None or time is None else batch * time
    return TensorSpec((steps, *rest), spec.dtype)


def _fold(x: jax.Array) -> jax.Array:
    """``(batch, time, ...)`` as ``(batch * time, ...)``: sample-major, each sample's steps in order."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
