"""``Masking``: marks the timesteps whose features all equal ``mask_value`` as padding (Keras's layer).

>>> x = dj.Input((None, 3))
>>> h = layers.Masking(mask_value=0.0)(x)   # later layers skip the all-zero steps
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from dagjax.layers._base import Layer


class Masking(Layer):
    """Zeroes the steps whose every feature is ``mask_value`` and masks them out: ``(batch, time)`` mask."""

    supports_masking = True
    creates_mask = True

    def __init__(self, mask_value: float = 0.0, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs: jax.Array, mask: Any = None) -> jax.Array:
        """True where some feature differs from ``mask_value``."""
        return jnp.any(jnp.not_equal(inputs, self.mask_value), axis=-1)

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The input, with masked steps set to zero (as Keras's)."""
        keep = self.compute_mask(x)[..., None]
        return jnp.where(keep, x, jnp.zeros((), x.dtype))

    def get_config(self) -> dict:
        """The base config plus ``mask_value``."""
        return {**super().get_config(), "mask_value": self.mask_value}
