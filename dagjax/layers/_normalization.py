"""Normalization layers: BatchNormalization (with batch renormalization) and LayerNormalization.

BatchNormalization keeps its moving statistics as non-trainable weights in
``state``; ``apply(..., training=True)`` normalises with the batch moments and
returns the updated statistics as the new state. In a padded batch the moments
are taken over the real rows only (``mask``, see ``uses_batch_mask``), so they
equal Keras's on the unpadded batch; on a sequence with a Keras mask, over its
real steps only, as Keras's masked moments.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from dagjax import initializers, regularizers
from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec, WeightSpec

_RENORM_CLIPPING_KEYS = ("rmax", "rmin", "dmax")


def normalize(x, mean, variance, epsilon: float, gamma=None, beta=None):
    """``(x - mean) / sqrt(variance + epsilon) * gamma + beta``, in Keras's operation order."""
    inv = jax.lax.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * gamma
    offset = -mean * inv
    if beta is not None:
        offset = offset + beta
    return x * inv + offset


def compute_dtype(dtype) -> jnp.dtype:
    """At least float32: statistics overflow in half precision."""
    return jnp.result_type(dtype, jnp.float32)


def affine_weights(layer: Layer, shape: tuple, gamma: bool, beta: bool) -> list[WeightSpec]:
    """The optional trainable ``gamma`` (scale) and ``beta`` (offset), in Keras's order."""
    weights = []
    if gamma:
        weights.append(WeightSpec("gamma", shape, layer.gamma_initializer,
                                  regularizer=layer.gamma_regularizer))
    if beta:
        weights.append(WeightSpec("beta", shape, layer.beta_initializer,
                                  regularizer=layer.beta_regularizer))
    return weights


def check_axes(layer: Layer, spec, axes: list[int]) -> list[int]:
    """``axes`` as sorted non-negative ints, each in range and of known size."""
    ndim = len(spec.shape)
    for a in axes:
        if not -ndim <= a < ndim:
            raise layer.input_error(f"has axis {a}, out of bounds for input shape {spec.shape}")
    resolved = sorted({a % ndim for a in axes})
    if len(resolved) != len(axes):
        raise layer.input_error(f"was given repeated axes {axes} for input shape {spec.shape}")
    if 0 in resolved:
        raise layer.input_error(f"cannot normalize over the batch axis 0 (axes {axes}, input {spec.shape})")
    unknown = [a for a in resolved if spec.shape[a] is None]
    if unknown:
        raise layer.input_error(
            f"needs known sizes on axes {unknown} to size gamma/beta, got input shape {spec.shape}"
        )
    return resolved


class BatchNormalization(Layer):
    """Normalises over every axis but ``axis`` using batch moments (training) or moving ones.

    ``renorm=True`` applies batch renormalization (Ioffe, 2017) exactly as
    Keras 3: the batch-normalised value is corrected by ``r`` (clipped to
    ``[rmin, rmax]``) and ``d`` (clipped to ``[-dmax, dmax]``) taken from the
    extra statistics ``renorm_mean`` / ``renorm_stddev``, and the inference
    variance is derived from ``moving_stddev``.
    """

    supports_masking = True  # as Keras: the input's mask passes through unchanged
    uses_batch_mask = True
    uses_input_mask = True  # as Keras: batch moments over the steps the input's mask keeps
    autocast_weights = False  # as Keras: scale, offset and statistics are read in float32

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        renorm: bool = False,
        renorm_clipping: dict | None = None,
        renorm_momentum: float = 0.99,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.renorm = renorm
        if renorm:
            renorm_clipping = dict(renorm_clipping or {})
            unknown = set(renorm_clipping) - set(_RENORM_CLIPPING_KEYS)
            if unknown:
                raise ValueError(
                    f"Invalid keys {sorted(unknown)} in renorm_clipping={renorm_clipping}; "
                    f"supported keys: {list(_RENORM_CLIPPING_KEYS)}."
                )
            rmax, rmin, dmax = (renorm_clipping.get(k) for k in _RENORM_CLIPPING_KEYS)
            if rmax is not None and rmin is not None and rmax < rmin:
                raise ValueError(f"renorm_clipping needs rmax >= rmin, got rmax={rmax}, rmin={rmin}.")
            if dmax is not None and dmax < 0:
                raise ValueError(f"renorm_clipping needs dmax >= 0, got dmax={dmax}.")
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = float(renorm_momentum)

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """gamma, beta, moving mean and variance (and renorm's stddev/mean stats), in Keras's order."""
        (axis,) = check_axes(self, spec, [self.axis])
        shape = (spec.shape[axis],)
        weights = affine_weights(self, shape, self.scale, self.center) + [
            WeightSpec("moving_mean", shape, self.moving_mean_initializer, trainable=False),
            WeightSpec("moving_variance", shape, self.moving_variance_initializer, trainable=False),
        ]
        if self.renorm:
            variance_init = self.moving_variance_initializer

            def stddev_init(key, shape, dtype=jnp.float32):
                return jnp.sqrt(variance_init(key, shape, dtype))

            weights += [
                WeightSpec("moving_stddev", shape, stddev_init, trainable=False),
                WeightSpec("renorm_mean", shape, self.moving_mean_initializer, trainable=False),
                WeightSpec("renorm_stddev", shape, stddev_init, trainable=False),
            ]
        return weights

    def apply(
        self,
        params: dict,
        state: dict,
        x: jax.Array,
        training: bool = False,
        rng: jax.Array | None = None,
        mask: jax.Array | None = None,
        input_mask: Any = None,
    ) -> tuple[jax.Array, dict]:
        """Trainable and training: batch moments (real rows, real steps), stats updated; else the moving ones.

        ``input_mask``: the Keras mask of ``x`` (its shape without the last axis), as Keras's ``mask``.
        """
        steps = None if input_mask is None else input_mask[0]
        if steps is not None and steps.ndim != x.ndim - 1:  # checked whatever the mode, as Keras
            raise self.input_error(
                f"takes a mask of one dimension less than its inputs; got mask shape {steps.shape} "
                f"for inputs of shape {x.shape}"
            )
        x = x.astype(compute_dtype(x.dtype))
        axis = self.axis % x.ndim
        reduce_axes = tuple(i for i in range(x.ndim) if i != axis)
        gamma, beta = params.get("gamma"), params.get("beta")
        if training and self.trainable:
            mean, variance = self._moments(x, reduce_axes, self._entry_weights(x, mask, steps))
            if self.renorm:
                gamma, beta = self._renorm_transform(state, mean, variance, gamma, beta)
                new_state = self._renorm_update(state, mean, variance)
            else:
                m = self.momentum
                new_state = {
                    **state,
                    "moving_mean": state["moving_mean"] * m + mean * (1.0 - m),
                    "moving_variance": state["moving_variance"] * m + variance * (1.0 - m),
                }
        else:
            mean, variance, new_state = state["moving_mean"], state["moving_variance"], state
        shape = [1] * x.ndim
        shape[axis] = -1
        gamma, beta = (None if v is None else v.reshape(shape) for v in (gamma, beta))
        out = normalize(x, mean.reshape(shape), variance.reshape(shape), self.epsilon, gamma, beta)
        return out.astype(self.compute_dtype), new_state

    def _entry_weights(self, x, rows, steps) -> jax.Array | None:
        """1.0 for the entries of ``x`` the moments count, 0.0 elsewhere; None when all count.

        ``rows`` (batch,): the padding mask of a padded batch; ``steps``: the Keras mask, ``x``'s shape
        without its last axis (Keras broadcasts it over the last axis, whatever ``axis`` is).
        """
        weights = None
        if rows is not None:
            if rows.shape != x.shape[:1]:
                raise self.input_error(f"got a mask of shape {rows.shape} for inputs of shape {x.shape}")
            weights = jnp.reshape(rows, rows.shape + (1,) * (x.ndim - 1)).astype(x.dtype)
        if steps is not None:
            steps = steps[..., None].astype(x.dtype)
            weights = steps if weights is None else weights * steps
        return None if weights is None else jnp.broadcast_to(weights, x.shape)

    @staticmethod
    def _moments(x, axes: tuple, weights):
        """Batch mean and variance over ``axes``; with ``weights``, over the entries they keep only."""
        if weights is None:
            return jnp.mean(x, axes), jnp.var(x, axes)
        count = jnp.maximum(jnp.sum(weights, axes, keepdims=True), 1.0)  # an all-masked channel: zeros
        mean = jnp.sum(x * weights, axes, keepdims=True) / count
        variance = jnp.sum(jnp.square(x - mean) * weights, axes) / count.reshape(-1)
        return mean.reshape(-1), variance

    def _renorm_transform(self, state, mean, variance, gamma, beta):
        """Scale and offset with the renorm correction folded in: ``(x*r + d)*gamma + beta``."""
        stddev = jnp.sqrt(variance + self.epsilon)
        renorm_stddev = jnp.maximum(state["renorm_stddev"], math.sqrt(self.epsilon))
        r = stddev / renorm_stddev
        d = (mean - state["renorm_mean"]) / renorm_stddev
        clip = self.renorm_clipping
        if clip.get("rmin") is not None:
            r = jnp.maximum(r, clip["rmin"])
        if clip.get("rmax") is not None:
            r = jnp.minimum(r, clip["rmax"])
        if clip.get("dmax") is not None:
            d = jnp.clip(d, -clip["dmax"], clip["dmax"])
        r, d = jax.lax.stop_gradient(r), jax.lax.stop_gradient(d)
        new_gamma = r if gamma is None else r * gamma
        new_beta = d if gamma is None else d * gamma
        if beta is not None:
            new_beta = new_beta + beta
        return new_gamma, new_beta

    def _renorm_update(self, state, mean, variance) -> dict:
        stddev = jnp.sqrt(variance + self.epsilon)
        rm, m = self.renorm_momentum, self.momentum
        moving_stddev = state["moving_stddev"] * m + stddev * (1.0 - m)
        return {
            **state,
            "renorm_mean": state["renorm_mean"] * rm + mean * (1.0 - rm),
            "renorm_stddev": state["renorm_stddev"] * rm + stddev * (1.0 - rm),
            "moving_mean": state["moving_mean"] * m + mean * (1.0 - m),
            "moving_stddev": moving_stddev,
            "moving_variance": jax.nn.relu(moving_stddev * moving_stddev - self.epsilon),
        }

    def get_config(self) -> dict:
        """Keras's BatchNormalization config, renorm settings included."""
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
            "renorm": self.renorm,
            "renorm_clipping": self.renorm_clipping,
            "renorm_momentum": self.renorm_momentum,
        }


class LayerNormalization(Layer):
    """Normalises each sample over ``axis`` (an int or a list), then scales and shifts.

    ``rms_scaling=True`` reproduces Keras's deprecated option: it divides by
    the standard deviation (not the root mean square) and uses no ``beta``.
    """

    autocast = False  # as Keras: normalizes in float32 whatever it is given, returns the compute dtype
    supports_masking = True  # as Keras: the input's mask passes through unchanged

    def __init__(
        self,
        axis: int | list[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        rms_scaling: bool = False,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, int):
            self.axis = axis
        else:
            raise TypeError(f"LayerNormalization axis must be an int or a list of ints, got {axis!r}.")
        if rms_scaling:
            warnings.warn(
                "rms_scaling=True divides by the standard deviation, sqrt(variance + epsilon), without "
                "subtracting the mean (not by the root mean square), as in Keras, where it is deprecated.",
                stacklevel=2,
            )
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.rms_scaling = rms_scaling
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def _axes(self) -> list[int]:
        return list(self.axis) if isinstance(self.axis, list) else [self.axis]

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """gamma and beta shaped as the normalized axes (gamma only, with ``rms_scaling``)."""
        shape = tuple(spec.shape[a] for a in check_axes(self, spec, self._axes()))
        with_gamma, with_beta = self.scale or self.rms_scaling, self.center and not self.rms_scaling
        return affine_weights(self, shape, with_gamma, with_beta)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """Each sample normalized over ``axis`` (float32 at least), scaled and shifted, in the layer dtype."""
        x = x.astype(compute_dtype(x.dtype))
        axes = sorted(a % x.ndim for a in self._axes())
        shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
        gamma, beta = (None if params.get(k) is None else params[k].reshape(shape) for k in ("gamma", "beta"))
        variance = jnp.var(x, axis=axes, keepdims=True)
        if self.rms_scaling:
            out = x * jax.lax.rsqrt(variance + self.epsilon)
            out = out if gamma is None else out * gamma
        else:
            out = normalize(x, jnp.mean(x, axis=axes, keepdims=True), variance, self.epsilon, gamma, beta)
        return out.astype(self.compute_dtype)

    def get_config(self) -> dict:
        """Keras's LayerNormalization config, ``rms_scaling`` included."""
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
        }
