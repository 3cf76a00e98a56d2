"""Discretization: numbers to bucket indices by bin boundaries, given or learned by ``adapt``.

``adapt`` is Keras's approximate-quantile summary (``summarize``,
``merge_summaries``, ``compress_summary``), ported in numpy so the learned
boundaries equal Keras's on the same batches. The boundaries are part of the
layer's config, so saving keeps them, as Keras's ``get_config`` does.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.layers._adapt import adapt_batches
from dagjax.layers._base import Layer
from dagjax.layers._categorical import check_output_mode, encode, encoded_shape
from dagjax.layers._specs import TensorSpec


def summarize(values: np.ndarray, epsilon: float) -> np.ndarray:
    """A ``(2, n)`` summary of ``values``: every ``1/epsilon``-th sorted value and the count it stands for."""
    values = np.sort(np.reshape(values, [-1]))
    step = max(values.size / (1.0 / epsilon), 1)
    boundaries = values[int(step - 1) :: int(step)]
    return np.stack([boundaries, np.ones_like(boundaries) * step])


def compress_summary(summary: np.ndarray, epsilon: float) -> np.ndarray:
    """``summary`` interpolated down to ``1/epsilon`` points of equal cumulative weight."""
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum_weights = summary[1].cumsum()
    cum_percents = cum_weights / cum_weights[-1]
    new_bins = np.interp(percents, cum_percents, summary[0])
    cum_weights = np.interp(percents, cum_percents, cum_weights)
    new_weights = cum_weights - np.concatenate((np.array([0]), cum_weights[:-1]))
    return np.stack((new_bins, new_weights)).astype("float32")


def merge_summaries(first: np.ndarray, second: np.ndarray, epsilon: float) -> np.ndarray:
    """Two summaries merged by value, then compressed."""
    merged = np.concatenate((first, second), axis=1)
    return compress_summary(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)


class Discretization(Layer):
    """Bucket indices ``i`` with ``boundaries[i-1] <= x < boundaries[i]`` (int32), or their encodings."""

    def __init__(
        self,
        bin_boundaries: Any = None,
        num_bins: int | None = None,
        epsilon: float = 0.01,
        output_mode: str = "int",
        sparse: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.output_mode = check_output_mode("Discretization", output_mode, sparse)
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"Discretization num_bins must be >= 0, got {num_bins}.")
        if num_bins is None and bin_boundaries is None:  # both: an adapted layer's config
            raise ValueError(
                "Discretization needs `bin_boundaries`, or `num_bins` and then a call to adapt()."
            )
        self.bin_boundaries = None if bin_boundaries is None else [float(b) for b in bin_boundaries]
        self.num_bins, self.epsilon = num_bins, float(epsilon)

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Learn ``num_bins`` quantile boundaries from ``data`` (an array or batches), as Keras."""
        if self.num_bins is None:
            raise ValueError(
                "Cannot adapt a Discretization layer made with `bin_boundaries`; make it with `num_bins`."
            )
        summary = np.array([[], []], dtype="float32")
        for i, batch in enumerate(adapt_batches(data, "Discretization")):
            if steps is not None and i >= steps:
                break
            summary = merge_summaries(summarize(batch.astype("float32"), self.epsilon), summary, self.epsilon)
        self.bin_boundaries = compress_summary(summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def _depth(self) -> int:
        return len(self.bin_boundaries) + 1

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """Indices as int32, else float32 encodings of ``len(bin_boundaries) + 1`` buckets."""
        if self.bin_boundaries is None:
            raise self.input_error("has no bin boundaries: call adapt(data) before using it")
        shape = encoded_shape(spec.shape, self.output_mode, self._depth())
        return TensorSpec(shape, "int32" if self.output_mode == "int" else "float32")

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``digitize(x, bin_boundaries)``, encoded."""
        boundaries = jnp.asarray(self.bin_boundaries, jnp.float32)
        indices = jnp.digitize(jnp.asarray(x, jnp.float32), boundaries).astype(jnp.int32)
        return encode(indices, self.output_mode, self._depth())

    def get_config(self) -> dict:
        """Keras's config, with the (given or adapted) boundaries."""
        return {
            **super().get_config(),
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": False,
        }
