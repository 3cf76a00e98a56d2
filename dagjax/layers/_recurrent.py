"""Recurrent layers: SimpleRNN, LSTM and GRU, each one loop over time (``lax.scan``, or unrolled).

Inputs are ``(batch, time, features)``; ``time`` may be unknown (``None``),
so one model runs sequences of any length. The input projection
``x @ kernel + bias`` is computed for every step at once before the scan;
only the recurrent part runs inside the loop. Weights follow Keras:
``kernel (features, gates * units)``, ``recurrent_kernel (units, gates * units)``
and ``bias``, with gates in Keras's order (LSTM ``i, f, c, o``; GRU ``z, r, h``).

Dropout follows Keras: one mask per sequence, reused at every step. With
``recurrent_dropout`` LSTM and GRU draw a separate mask for each gate.

A layer may be called as ``layer(x)`` or ``layer(x, initial_state)`` where
``initial_state`` is a list of ``(batch, units)`` tensors (``[h, c]`` for LSTM).
Arguments and defaults are Keras's; those after ``activation`` (and
``recurrent_activation``) are keyword-only. ``stateful`` is not supported
(``NotImplementedError``); ``unroll=True`` forces the unrolled loop where the
length is fixed and short (``_time_loops``), as ``layer.lowering = "unrolled"``.

A Keras mask on the input (``Embedding(mask_zero=True)``, ``Masking``) makes
masked steps keep the previous states, and output the previous ``h`` (zeros
with ``zero_output_for_mask=True``), as Keras's; with ``return_sequences`` the
output keeps the mask.

>>> x = dj.Input((None, 8))
>>> seq, h, c = layers.LSTM(4, return_sequences=True, return_state=True)(x)
>>> seq.shape, h.shape
((None, None, 4), (None, 4))
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dagjax import activations, initializers, regularizers
from dagjax.layers import _lowering
from dagjax.layers._base import Layer
from dagjax.layers._core import last_dim
from dagjax.layers._specs import TensorSpec, WeightSpec
from dagjax.layers._time_loops import time_loop

# the settings that change what one step computes: part of the loop's signature for the picker
_BODY_SETTINGS = ("activation", "recurrent_activation", "reset_after", "return_sequences",
                  "zero_output_for_mask")


def _recurrent_matmul(h, kernel, masks):
    """``h @ kernel`` with ``h`` dropped out by ``masks`` ``(k, batch, units)``: one mask per gate block."""
    if masks is None:
        return h @ kernel
    if masks.shape[0] == 1:
        return (h * masks[0]) @ kernel
    k, units = masks.shape[0], kernel.shape[0]
    blocks = jnp.einsum("kbu,ukv->bkv", h[None] * masks, kernel.reshape(units, k, -1))
    return blocks.reshape(h.shape[0], -1)


class _RNN(Layer):
    """Shared machinery of the recurrent layers; subclasses define the cell.

    A subclass sets ``gates`` (blocks of ``units`` in the kernels) and
    ``num_states`` (1, or 2 for LSTM's ``[h, c]``), and implements
    ``_step(params, carry, x_t, masks) -> carry``: one time step, given the
    step's projected input ``x_t`` and the recurrent dropout masks (or ``None``).
    """

    uses_rng = True
    supports_masking = True
    uses_input_mask = True
    gates = 1
    num_states = 1

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        *,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        zero_output_for_mask: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, activity_regularizer=activity_regularizer, **kwargs)
        kind = type(self).__name__
        if int(units) <= 0:
            raise ValueError(f"{kind} units must be a positive int, got {units!r}.")
        if stateful:
            raise NotImplementedError(
                f"{kind}(stateful=True) is not supported: layers hold no arrays in dagjax. Carry the "
                "state yourself with return_state=True and pass it back as initial_state."
            )
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.lowering = "unrolled" if unroll else None  # Keras's unroll=True: the unrolled loop

    @property
    def lowering(self) -> str | None:
        """This layer's loop over time, forced (``"scan"``, ``"unrolled"``), or None: the picker's
        (``_time_loops``). Only ``"unrolled"`` reaches the config, as Keras's ``unroll=True``.
        """
        return self._lowering

    @lowering.setter
    def lowering(self, name: str | None) -> None:
        _lowering.check_name(name, f"{type(self).__name__} '{self.name}'.lowering", _lowering.RECURRENT_NAMES)
        self._lowering = name

    # ------------------------------------------------------------------ building
    def check_input(self, spec: TensorSpec, initial_state: Any = None) -> None:
        """Input ``(batch, time, features)`` and, if given, ``num_states`` states of ``(batch, units)``."""
        if not hasattr(spec, "shape") or len(spec.shape) != 3:
            raise self.input_error(
                "expects input of shape (batch, time, features), rank 3, "
                f"got {getattr(spec, 'shape', type(spec).__name__)}"
            )
        if initial_state is None:
            return
        states = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
        if len(states) != self.num_states:
            raise self.input_error(f"takes {self.num_states} initial state(s), got {len(states)}")
        for i, s in enumerate(states):
            if len(s.shape) != 2 or s.shape[1] != self.units:
                raise self.input_error(
                    f"expects initial state {i} of shape (batch, {self.units}), got {s.shape}"
                )

    def declare_weights(self, spec: TensorSpec, initial_state: Any = None) -> list[WeightSpec]:
        """Keras's ``kernel``, ``recurrent_kernel`` and ``bias``, each ``gates`` blocks of ``units`` wide."""
        width = self.gates * self.units
        weights = [
            WeightSpec("kernel", (last_dim(self, spec, "features"), width), self.kernel_initializer,
                       regularizer=self.kernel_regularizer),
            WeightSpec("recurrent_kernel", (self.units, width), self.recurrent_initializer,
                       regularizer=self.recurrent_regularizer),
        ]
        if self.use_bias:
            weights.append(WeightSpec("bias", self._bias_shape(), self._bias_init(),
                                      regularizer=self.bias_regularizer))
        return weights

    def _bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    # ------------------------------------------------------------------ running
    def apply(
        self,
        params: dict,
        state: dict,
        x: jax.Array,
        initial_state: Any = None,
        training: bool = False,
        rng: jax.Array | None = None,
        input_mask: Any = None,
    ) -> tuple[Any, dict]:
        """The cell's loop over time (``lax.scan`` or unrolled: ``_time_loops``): the last or every
        ``h``, and states if ``return_state``.

        ``input_mask``: the Keras masks of ``(x, initial_state)``; masked steps leave the states as they are.
        """
        input_masks, recurrent_masks = self._dropout_masks(x, training, rng)
        inputs = self._project_inputs(params, x, input_masks)
        inputs = jnp.swapaxes(inputs, 0, 1)  # time-major for the scan
        steps = None if input_mask is None or input_mask[0] is None else jnp.swapaxes(input_mask[0], 0, 1)
        if self.go_backwards:
            inputs = inputs[::-1]
            steps = None if steps is None else steps[::-1]
        if initial_state is None:
            carry = tuple(jnp.zeros((x.shape[0], self.units), inputs.dtype) for _ in range(self.num_states))
        else:
            states = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
            carry = tuple(jnp.asarray(s, inputs.dtype) for s in states)

        xs = (inputs,) if steps is None else (inputs, steps)
        body = {k: v for k, v in self.get_config().items() if k in _BODY_SETTINGS}  # what the step computes
        op = f"{type(self).__name__} {sorted(body.items())} masked={steps is not None}"
        carry, outputs = time_loop(self, op, self._time_step, (params, recurrent_masks), carry, xs)
        if self.return_sequences:
            output = jnp.swapaxes(outputs, 0, 1)
        elif steps is not None and self.zero_output_for_mask:
            output = jnp.where(steps[-1][:, None].astype(bool), carry[0], 0.0)
        else:
            output = carry[0]
        return ([output, *carry] if self.return_state else output), state

    def _time_step(self, consts: tuple, carry: tuple, xs: tuple) -> tuple:
        """One step of the loop over time: ``consts`` the weights and recurrent dropout masks, ``xs``
        the step's projected input and, when masked, whether the step is real (else the states stay).
        """
        params, recurrent_masks = consts
        new = self._step(params, carry, xs[0], recurrent_masks)
        if len(xs) == 1:
            return new, new[0] if self.return_sequences else None
        real = xs[1][:, None].astype(bool)
        new = tuple(jnp.where(real, n, c) for n, c in zip(new, carry))
        if not self.return_sequences:
            return new, None
        return new, jnp.where(real, new[0], 0.0) if self.zero_output_for_mask else new[0]

    def compute_mask(self, inputs: jax.Array, mask: Any = None) -> Any:
        """The input's mask on a sequence output (``return_sequences``), none on a last step or states."""
        output_mask = mask if self.return_sequences else None
        return [output_mask] + [None] * self.num_states if self.return_state else output_mask

    def _dropout_masks(self, x, training: bool, rng):
        """Per-sequence masks ``(k, batch, dim)`` for inputs and recurrent state, or ``None``."""
        use_input = training and 0.0 < self.dropout < 1.0
        use_recurrent = training and 0.0 < self.recurrent_dropout < 1.0
        if not (use_input or use_recurrent):
            return None, None
        if rng is None:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) needs an rng key for dropout when "
                "training=True: pass rng=jax.random.key(...) to apply."
            )
        k = self.gates if self.recurrent_dropout > 0 else 1  # Keras: a mask per gate with recurrent dropout
        input_key, recurrent_key = jax.random.split(rng)

        def masks(key, rate, dim):
            keep = jax.random.bernoulli(key, 1.0 - rate, (k, x.shape[0], dim))
            return keep.astype(x.dtype) / (1.0 - rate)

        return (
            masks(input_key, self.dropout, x.shape[-1]) if use_input else None,
            masks(recurrent_key, self.recurrent_dropout, self.units) if use_recurrent else None,
        )

    def _input_bias(self, params):
        return params["bias"] if self.use_bias else None

    def _project_inputs(self, params, x, masks):
        """``x @ kernel + bias`` for every step: ``(batch, time, gates * units)``."""
        kernel = params["kernel"]
        if masks is None:
            y = x @ kernel
        elif masks.shape[0] == 1:
            y = (x * masks[0][:, None, :]) @ kernel
        else:
            k = masks.shape[0]
            y = jnp.einsum("kbtf,fkv->btkv", x[None] * masks[:, :, None, :],
                           kernel.reshape(kernel.shape[0], k, -1))
            y = y.reshape(*x.shape[:2], -1)
        bias = self._input_bias(params)
        return y if bias is None else y + bias

    def get_config(self) -> dict:
        """The arguments Keras's RNN layers share: units, weights' settings, dropout, return flags."""
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "zero_output_for_mask": self.zero_output_for_mask,
            "stateful": False,
            "unroll": self.lowering == "unrolled",  # Keras's flag, kept as files from Keras keep it
        }


class SimpleRNN(_RNN):
    """Fully-connected recurrence: ``h = activation(x @ kernel + h @ recurrent_kernel + bias)``."""

    def _step(self, params, carry, x_t, masks):
        (h,) = carry
        return (self.activation(x_t + _recurrent_matmul(h, params["recurrent_kernel"], masks)),)


class _GatedRNN(_RNN):
    """An RNN with a ``recurrent_activation`` for its gates (LSTM, GRU)."""

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid", *,
                 name: str | None = None, **kwargs: Any) -> None:
        super().__init__(units, activation=activation, name=name, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)

    def get_config(self) -> dict:
        """The shared RNN config plus the gates' ``recurrent_activation``."""
        recurrent_activation = activations.serialize(self.recurrent_activation)
        return {**super().get_config(), "recurrent_activation": recurrent_activation}


class LSTM(_GatedRNN):
    """Long short-term memory; states ``[h, c]``, gates ``i, f, c, o``.

    ``unit_forget_bias=True`` starts the forget-gate bias at one.
    """

    gates = 4
    num_states = 2

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid", *,
                 unit_forget_bias: bool = True, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(units, activation, recurrent_activation, name=name, **kwargs)
        self.unit_forget_bias = unit_forget_bias

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        init, units = self.bias_initializer, self.units

        def bias_init(key, shape, dtype=jnp.float32):
            input_key, rest_key = jax.random.split(key)
            return jnp.concatenate([init(input_key, (units,), dtype), jnp.ones((units,), dtype),
                                    init(rest_key, (2 * units,), dtype)])

        return bias_init

    def _step(self, params, carry, x_t, masks):
        h, c = carry
        z = x_t + _recurrent_matmul(h, params["recurrent_kernel"], masks)
        i, f, g, o = jnp.split(z, 4, axis=-1)
        gate = self.recurrent_activation
        c = gate(f) * c + gate(i) * self.activation(g)
        return gate(o) * self.activation(c), c

    def get_config(self) -> dict:
        """The gated RNN config plus ``unit_forget_bias``."""
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_GatedRNN):
    """Gated recurrent unit; gates ``z, r, h``.

    ``reset_after=True`` (Keras's default) applies the reset gate after the
    recurrent matmul and keeps a separate recurrent bias: ``bias`` has shape
    ``(2, 3 * units)``, rows input and recurrent.
    """

    gates = 3

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid", *,
                 reset_after: bool = True, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(units, activation, recurrent_activation, name=name, **kwargs)
        self.reset_after = reset_after

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _input_bias(self, params):
        if not self.use_bias:
            return None
        return params["bias"][0] if self.reset_after else params["bias"]

    def _step(self, params, carry, x_t, masks):
        (h,) = carry
        kernel, u = params["recurrent_kernel"], self.units
        zr_masks, h_masks = (None, None) if masks is None else (masks[:2], masks[2:])
        x_z, x_r, x_h = jnp.split(x_t, 3, axis=-1)
        if self.reset_after:
            inner = _recurrent_matmul(h, kernel, masks)
            if self.use_bias:
                inner = inner + params["bias"][1]
            r_z, r_r, r_h = jnp.split(inner, 3, axis=-1)
            r = self.recurrent_activation(x_r + r_r)
            r_h = r * r_h
        else:
            r_z, r_r = jnp.split(_recurrent_matmul(h, kernel[:, : 2 * u], zr_masks), 2, axis=-1)
            r = self.recurrent_activation(x_r + r_r)
            r_h = _recurrent_matmul(r * h, kernel[:, 2 * u :], h_masks)
        z = self.recurrent_activation(x_z + r_z)
        return (z * h + (1 - z) * self.activation(x_h + r_h),)

    def get_config(self) -> dict:
        """The gated RNN config plus ``reset_after``, which decides the bias shape."""
        return {**super().get_config(), "reset_after": self.reset_after}
