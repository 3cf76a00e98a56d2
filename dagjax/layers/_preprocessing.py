"""Numeric preprocessing inside a model: Normalization (with ``adapt``) and Rescaling.

Normalization's adapted ``mean`` and ``variance`` are non-trainable weights
in ``state`` (with Keras's ``count``), so ``get_weights``, saving and loading
keep them as Keras does. ``adapt(data)`` computes them in numpy on the host;
they become the values ``init`` gives those weights. Adapt before the model
first makes its weights (before ``fit``, ``predict`` or reading ``params``),
as the Keras guides do: a model that already holds weights keeps the ones it
has (``model.set_weights`` or a fresh model picks up the adapted values).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.layers._adapt import adapt_batches
from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec, WeightSpec

_KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): the smallest standard deviation divided by


def _constant(values: np.ndarray):
    """An initializer giving ``values`` (the adapted statistics)."""

    def initializer(key, shape, dtype=jnp.float32):
        return jnp.asarray(np.broadcast_to(values, shape), dtype)

    return initializer


class Normalization(Layer):
    """``(x - mean) / sqrt(variance)`` per position of ``axis`` (``invert=True``: the inverse map).

    ``mean``/``variance`` come from the constructor or from :meth:`adapt`; as
    in Keras, ``axis=None`` keeps one mean and variance for the whole input.
    """

    min_ndim = 1

    def __init__(
        self,
        axis: int | tuple | None = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.axis = () if axis is None else (int(axis),) if isinstance(axis, int) else tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError(
                "Normalization needs both `mean` and `variance` when setting values directly, "
                f"got mean={mean} and variance={variance}."
            )
        if mean is not None and np.shape(mean) != np.shape(variance):
            raise ValueError(
                f"Normalization `mean` and `variance` must have the same shape, got {np.shape(mean)} "
                f"and {np.shape(variance)}."
            )
        if mean is not None and np.ndim(mean) > len(self.axis):
            raise ValueError(
                f"Normalization `mean` has rank {np.ndim(mean)}, more than the {len(self.axis)} kept "
                f"axes {self.axis}."
            )
        self.input_mean, self.input_variance = mean, variance
        self.invert = bool(invert)
        self._adapted: tuple[np.ndarray, np.ndarray] | None = None

    def _kept_axes(self, shape: tuple) -> tuple[int, ...]:
        ndim = len(shape)
        bad = [a for a in self.axis if not -ndim <= a < ndim]
        if bad:
            raise self.input_error(f"has axis {self.axis}, out of range for input shape {shape}")
        kept = tuple(sorted(a % ndim for a in self.axis))
        unknown = [a for a in kept if shape[a] is None]
        if unknown:
            raise self.input_error(
                f"needs known sizes on the kept axes {kept} to size its mean and variance, got input "
                f"shape {shape} (unknown on axes {unknown})"
            )
        return kept

    def declare_weights(self, spec: TensorSpec) -> list[WeightSpec]:
        """Keras's ``mean``, ``variance`` (adapted, else 0 and 1) and ``count``; none for given values."""
        kept = self._kept_axes(spec.shape)
        if self.input_mean is not None:
            return []
        shape = tuple(spec.shape[d] for d in kept)
        if self._adapted is not None and self._adapted[0].shape != shape:
            raise self.input_error(
                f"was adapted on data giving statistics of shape {self._adapted[0].shape}, but is called on "
                f"input shape {spec.shape}, which needs {shape}"
            )
        mean, variance = self._adapted or (np.zeros(shape, np.float32), np.ones(shape, np.float32))
        return [
            WeightSpec("mean", shape, _constant(mean), trainable=False),
            WeightSpec("variance", shape, _constant(variance), trainable=False),
            WeightSpec("count", (), _constant(np.zeros((), np.int32)), dtype=jnp.int32, trainable=False),
        ]

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape, in float32."""
        return TensorSpec(spec.shape, "float32")

    def apply(
        self, params: dict, state: dict, x: jax.Array, training: bool = False, rng: jax.Array | None = None
    ) -> tuple[jax.Array, dict]:
        """The normalised (or, with ``invert``, de-normalised) input, in float32."""
        x = jnp.asarray(x, jnp.float32)
        kept = self._kept_axes(x.shape)
        shape = tuple(x.shape[d] if d in kept else 1 for d in range(x.ndim))
        if self.input_mean is not None:
            mean, variance = self._given_statistics(kept, shape)
        else:
            mean, variance = state["mean"].reshape(shape), state["variance"].reshape(shape)
        stddev = jnp.maximum(jnp.sqrt(variance), _KERAS_EPSILON)
        out = mean + x * stddev if self.invert else (x - mean) / stddev
        return out, state

    def _given_statistics(self, kept: tuple, shape: tuple) -> tuple[jax.Array, jax.Array]:
        """The constructor's mean and variance, placed on the kept axes (the last ones first), as Keras."""
        mean, variance = (np.asarray(v, np.float32) for v in (self.input_mean, self.input_variance))
        expanded = [1] * len(shape)
        for i in range(1, mean.ndim + 1):
            expanded[kept[-i]] = mean.shape[-i]
        return tuple(jnp.broadcast_to(jnp.asarray(v.reshape(expanded)), shape) for v in (mean, variance))

    def adapt(self, data: Any) -> None:
        """Set the mean and variance from ``data`` (an array or an iterable of batches), as Keras."""
        total_mean = total_var = None
        total_count = 0
        for batch in adapt_batches(data, "Normalization"):
            batch = batch.astype(np.float64)
            kept = self._kept_axes(batch.shape)
            if self._built_for is not None:
                built = self._built_for[0].shape
                if [built[d] for d in kept] != [batch.shape[d] for d in kept]:
                    raise self.input_error(
                        f"was built for input shape {built}, but adapt() got data of shape {batch.shape}"
                    )
            reduce = tuple(d for d in range(batch.ndim) if d not in kept)
            batch_mean, batch_var = batch.mean(axis=reduce), batch.var(axis=reduce)
            count = int(np.prod([batch.shape[d] for d in reduce]))
            if total_mean is None:
                total_mean, total_var, total_count = batch_mean, batch_var, count
                continue
            if batch_mean.shape != total_mean.shape:
                raise ValueError(
                    f"Normalization.adapt() got batches whose kept axes differ: {batch.shape} after "
                    f"statistics of shape {total_mean.shape}."
                )
            total_count += count  # Keras's running combination of the batches' moments
            new_weight = count / total_count
            old_weight = 1.0 - new_weight
            new_mean = total_mean * old_weight + batch_mean * new_weight
            total_var = (total_var + (total_mean - new_mean) ** 2) * old_weight + (
                batch_var + (batch_mean - new_mean) ** 2
            ) * new_weight
            total_mean = new_mean
        self._adapted = (total_mean.astype(np.float32), total_var.astype(np.float32))
        if self._weight_specs is not None:  # already built: its weights start from the new values
            self._weight_specs = self.declare_weights(*self._built_for)

    def get_config(self) -> dict:
        """Keras's config: ``axis``, ``invert``, the given ``mean``/``variance`` (adapted: weights)."""

        def as_list(v):
            return None if v is None else np.asarray(v).tolist()

        return {
            **super().get_config(),
            "axis": list(self.axis),
            "invert": self.invert,
            "mean": as_list(self.input_mean),
            "variance": as_list(self.input_variance),
        }


class Rescaling(Layer):
    """``x * scale + offset`` in float32 (``scale`` and ``offset`` may be per-channel lists)."""

    def __init__(self, scale: Any, offset: Any = 0.0, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.scale, self.offset = scale, offset

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape, in float32."""
        return TensorSpec(spec.shape, "float32")

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``x * scale + offset``."""
        scale, offset = (jnp.asarray(v, jnp.float32) for v in (self.scale, self.offset))
        return jnp.asarray(x, jnp.float32) * scale + offset

    def get_config(self) -> dict:
        """Keras's config: ``scale`` and ``offset``."""
        def as_json(v):
            return np.asarray(v).tolist() if np.ndim(v) else float(v)

        return {**super().get_config(), "scale": as_json(self.scale), "offset": as_json(self.offset)}
