"""Regularization noise: GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout1D/2D/3D.

As Dropout: random in training only, drawn from the ``rng`` that ``apply``
is given (``fit`` derives one per step from ``compile``'s seed), and the
identity in inference. ``seed`` is recorded in the config, as Keras's; the
draws come from ``rng``.
"""

from __future__ import annotations

import math
from typing import Any

import jax

from dagjax.layers._base import Layer
from dagjax.layers._core import Dropout, filled_noise_shape, require_rng
from dagjax.layers._specs import TensorSpec

# SELU's constants: AlphaDropout keeps a SELU network's mean and variance
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check_rate(layer: str, rate: float) -> float:
    """``rate`` as a float in ``[0, 1)``: at 1 the rescaling that keeps the variance is infinite."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{layer} rate must be in [0, 1), got {rate!r} (at 1 its noise is infinite).")
    return float(rate)


class _TrainingNoise(Layer):
    """Base: ``noise(x, rng)`` in training when ``active``, the identity otherwise."""

    supports_masking = True  # as Keras: the input's mask passes through unchanged
    uses_rng = True

    def active(self) -> bool:
        """Whether training draws any noise (a rate or stddev of 0 draws none)."""
        raise NotImplementedError

    def noise(self, x: jax.Array, rng: jax.Array) -> jax.Array:
        """``x`` with the layer's noise drawn from ``rng``."""
        raise NotImplementedError

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """The input's shape and dtype, without tracing the random draw."""
        return TensorSpec(spec.shape, spec.dtype)

    def apply(
        self, params: dict, state: dict, x: jax.Array, training: bool = False, rng: jax.Array | None = None
    ) -> tuple[jax.Array, dict]:
        """The noisy input in training (``rng`` required), the input itself otherwise."""
        if not training or not self.active():
            return x, state
        return self.noise(x, require_rng(self, rng)), state


class GaussianNoise(_TrainingNoise):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` (in [0, 1], as Keras)."""

    def __init__(
        self, stddev: float, seed: int | None = None, name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name=name, **kwargs)
        if not 0.0 <= stddev <= 1.0:
            raise ValueError(f"GaussianNoise stddev must be in [0, 1], got {stddev!r}.")
        self.stddev, self.seed = float(stddev), seed

    def active(self) -> bool:
        """Whether ``stddev > 0``."""
        return self.stddev > 0

    def noise(self, x: jax.Array, rng: jax.Array) -> jax.Array:
        """``x + stddev * N(0, 1)``."""
        return x + self.stddev * jax.random.normal(rng, x.shape, x.dtype)

    def get_config(self) -> dict:
        """Keras's config: ``stddev`` and ``seed``."""
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_TrainingNoise):
    """Multiplies by Gaussian noise of mean 1 and variance ``rate / (1 - rate)``, Dropout's own variance."""

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.rate, self.seed = _check_rate("GaussianDropout", rate), seed

    def active(self) -> bool:
        """Whether ``rate > 0``."""
        return self.rate > 0

    def noise(self, x: jax.Array, rng: jax.Array) -> jax.Array:
        """``x * (1 + sqrt(rate / (1 - rate)) * N(0, 1))``."""
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        return x * (1.0 + stddev * jax.random.normal(rng, x.shape, x.dtype))

    def get_config(self) -> dict:
        """Keras's config: ``rate`` and ``seed``."""
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(_TrainingNoise):
    """Dropout for SELU networks: dropped units take SELU's negative saturation, then an affine map
    restores the input's mean and variance (Klambauer et al., 2017), as Keras computes it."""

    def __init__(
        self,
        rate: float,
        noise_shape: tuple | None = None,
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.rate = _check_rate("AlphaDropout", rate)
        self.noise_shape, self.seed = noise_shape, seed

    def active(self) -> bool:
        """Whether ``rate > 0``."""
        return self.rate > 0

    def noise(self, x: jax.Array, rng: jax.Array) -> jax.Array:
        """``a * (x where kept, else -alpha * scale) + b``, the mask drawn in ``noise_shape``."""
        draws = jax.random.uniform(rng, filled_noise_shape(self.noise_shape, x.shape))
        kept = (draws >= self.rate).astype(x.dtype)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * self.rate
        return a * (x * kept + alpha_p * (1 - kept)) + b

    def get_config(self) -> dict:
        """Keras's config: ``rate``, ``noise_shape`` and ``seed``."""
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class _SpatialDropout(Dropout):
    """Dropout of whole channels: one draw per sample and channel, shared over the other axes."""

    def __init__(
        self,
        rate: float,
        data_format: str | None = None,
        seed: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(rate, seed=seed, name=name, **kwargs)
        self.data_format = data_format or "channels_last"
        if self.data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"{type(self).__name__} data_format must be 'channels_last' or 'channels_first', "
                f"got {data_format!r}."
            )

    def mask_shape(self, shape: tuple) -> tuple:
        """``(batch, 1, ..., channels)``, or ``(batch, channels, 1, ...)`` for channels-first input."""
        ones = (1,) * (len(shape) - 2)
        if self.data_format == "channels_first":
            return (shape[0], shape[1], *ones)
        return (shape[0], *ones, shape[-1])

    def get_config(self) -> dict:
        """Keras's config: ``rate``, ``seed`` and ``data_format`` (no ``noise_shape``)."""
        config = {**super().get_config(), "data_format": self.data_format}
        del config["noise_shape"]
        return config


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of ``(batch, steps, channels)`` sequences."""

    input_ndim = 3

    def __init__(
        self, rate: float, seed: int | None = None, name: str | None = None, data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(rate, data_format=data_format, seed=seed, name=name, **kwargs)


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of ``(batch, rows, cols, channels)`` images (channels first if asked)."""

    input_ndim = 4


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes of ``(batch, dim1, dim2, dim3, channels)`` (channels first if asked)."""

    input_ndim = 5
