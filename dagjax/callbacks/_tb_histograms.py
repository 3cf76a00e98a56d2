"""Histograms for TensorBoard, computed on the device by one jitted function.

:class:`HistogramProbe` summarises every weight, and on a validation batch
every layer's activations and every trainable weight's gradient, into
30 equal-width buckets (TensorFlow's default) plus min, max, count, sum and
sum of squares. Only those few numbers per tensor travel to the host, and the
function runs only on the epochs that log histograms, so the training step
itself never changes.

Gradients are those of the compiled loss (weighted output losses plus
regularisation) on the validation batch in inference mode, so they are
deterministic (no Dropout draw) and need no extra state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.model import Model
from dagjax.training.core import TrainState, trainable_mask

BUCKETS = 30


class Histogram(NamedTuple):
    """A histogram as TensorBoard stores it: ``bucket_limits`` are right edges."""

    min: float
    max: float
    num: int
    sum: float
    sum_squares: float
    bucket_limits: list
    bucket_counts: list


def summarise(arrays: list, segment: jax.Array) -> dict:
    """Bucket counts and moments of the finite values of each array (traceable).

    All arrays are flattened into one vector and reduced by ``segment`` (the
    array index of each value, passed in rather than built in the program so
    XLA does not constant-fold it): the compiled program has the same few
    operations however many tensors there are.
    """
    n = len(arrays)
    values = jnp.concatenate([jnp.ravel(a).astype(jnp.float32) for a in arrays])
    finite = jnp.isfinite(values)
    lo = jax.ops.segment_min(jnp.where(finite, values, jnp.inf), segment, n)
    hi = jax.ops.segment_max(jnp.where(finite, values, -jnp.inf), segment, n)
    width = jnp.where(hi > lo, (hi - lo) / BUCKETS, 1.0)
    start = lo[segment]
    bucket = jnp.floor((jnp.where(finite, values, start) - start) / width[segment])
    bucket = jnp.clip(bucket, 0, BUCKETS - 1).astype(jnp.int32)
    count = finite.astype(jnp.int32)
    clean = jnp.where(finite, values, 0.0)
    return {
        "min": lo,
        "max": hi,
        "num": jax.ops.segment_sum(count, segment, n),
        "sum": jax.ops.segment_sum(clean, segment, n),
        "sum_squares": jax.ops.segment_sum(clean * clean, segment, n),
        "counts": jax.ops.segment_sum(count, segment * BUCKETS + bucket, n * BUCKETS).reshape(n, BUCKETS),
    }


def to_histogram(stats: dict, i: int) -> Histogram | None:
    """The host-side histogram of array ``i`` in :func:`summarise`'s result; None if none was finite."""
    lo, hi, num = float(stats["min"][i]), float(stats["max"][i]), int(stats["num"][i])
    if num == 0:
        return None
    if hi > lo:
        limits = list(lo + (hi - lo) * np.arange(1, BUCKETS + 1) / BUCKETS)
        limits[-1] = hi
        counts = [float(c) for c in stats["counts"][i]]
    else:
        limits, counts = [hi], [float(num)]
    return Histogram(lo, hi, num, float(stats["sum"][i]), float(stats["sum_squares"][i]), limits, counts)


def leaf(tree: dict, path: tuple) -> Any:
    """The array at ``path`` in a nested dict of arrays."""
    for key in path:
        tree = tree[key]
    return tree


def activation_tags(model: Model) -> list[tuple[str, Any]]:
    """``(tag, tensor)`` for every output of every layer call in ``model`` (InputLayers aside)."""
    calls: dict[str, int] = {}
    tags = []
    for node in model.nodes:
        name = node.layer.name
        call = calls[name] = calls.get(name, -1) + 1
        for index, tensor in enumerate(node.output_tensors):
            suffix = (f"_{call}" if call else "") + (f"_out{index}" if len(node.output_tensors) > 1 else "")
            tags.append((f"{name}/activations{suffix}", tensor))
    return tags


class HistogramProbe:
    """Histograms of weights (and, given a validation batch, activations and gradients) in one call."""

    def __init__(self, model: Model, target_shapes: list | None = None) -> None:
        self.weights = [
            ("/".join(path) + "/histogram", collection, path) for collection, path in model.weight_paths()
        ]
        self.activations: list[str] = []
        self.gradients: list[tuple[str, tuple]] = []
        probe = trainer = None
        if target_shapes is not None:
            pairs = activation_tags(model)
            self.activations = [tag for tag, _ in pairs]
            probe = Model(model.inputs, [t for _, t in pairs], name=f"{model.name}_activations")
            frozen = trainable_mask(model, model.weights_view()[0])
            self.gradients = [
                ("/".join(path) + "/gradient", path)
                for collection, path in model.weight_paths()
                if collection == "params" and leaf(frozen, path)
            ]
            session = model.fit_session  # the compiled losses alone, for targets of these shapes
            no_metrics = tuple([] for _ in model.output_names)
            objective = session.objective._replace(metrics=no_metrics, weighted_metrics=no_metrics)
            trainer = session.trainer_for(target_shapes, objective)

        def collect(params: dict, state: dict, batch: tuple | None) -> list:
            trees = {"params": params, "state": state}
            arrays = [leaf(trees[c], path) for _, c, path in self.weights]
            if batch is not None:
                arrays += jax.tree_util.tree_leaves(probe.apply(params, state, batch[0], training=False)[0])

                def loss(p):
                    ts = trainer.reset_metrics(TrainState(p, state, None, jnp.zeros((), jnp.int32), {}))
                    return trainer.metric_results(trainer.eval_step(ts, batch))["loss"]

                grads = jax.grad(loss)(params)
                arrays += [leaf(grads, path) for _, path in self.gradients]
            return arrays

        self._collect = collect
        self._stats = jax.jit(
            lambda params, state, batch, segment: summarise(collect(params, state, batch), segment)
        )
        self._segments: dict = {}
        self.calls = 0

    def __call__(self, params: dict, state: dict, batch: tuple | None = None) -> dict[str, Histogram]:
        """Histograms by tag; ``batch`` is ``(x, y, sample_weight, mask)`` or None (weights only)."""
        self.calls += 1
        tags = [tag for tag, _, _ in self.weights]
        if batch is not None:
            tags += self.activations + [tag for tag, _ in self.gradients]
        if not tags:
            return {}
        key = None if batch is None else tuple(np.shape(v) for v in jax.tree_util.tree_leaves(batch))
        if key not in self._segments:
            sizes = [int(np.prod(a.shape)) for a in jax.eval_shape(self._collect, params, state, batch)]
            self._segments[key] = jax.device_put(np.repeat(np.arange(len(sizes), dtype=np.int32), sizes))
        stats = jax.device_get(self._stats(params, state, batch, self._segments[key]))
        histograms = {tag: to_histogram(stats, i) for i, tag in enumerate(tags)}
        return {tag: h for tag, h in histograms.items() if h is not None}
