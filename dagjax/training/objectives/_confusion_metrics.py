"""Threshold metrics: confusion counts, Precision, Recall and AUC, with Keras 3's numerics.

Every metric here accumulates weighted true/false positive/negative counts per
threshold. Like Keras, evenly spaced thresholds use a bucketed cumulative sum
(fast and exact for AUC's 200 thresholds); any other thresholds compare each
prediction against each threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from dagjax.training.objectives._loss_functions import EPSILON, align_ranks, divide_no_nan
from dagjax.training.objectives._metric_base import Metric

NEG_INF = -1e10
COUNTS = ("true_positives", "false_positives", "true_negatives", "false_negatives")


def _thresholds_list(thresholds, default: float) -> list[float]:
    values = [default] if thresholds is None else list(np.atleast_1d(thresholds))
    if thresholds is not None:
        bad = [t for t in values if t is None or not 0 <= t <= 1]
        if bad:
            raise ValueError(f"Threshold values must be in [0, 1], got {bad}.")
    return [float(t) for t in values]


def evenly_distributed(thresholds: Sequence[float] | np.ndarray) -> bool:
    """Whether ``thresholds`` are ``0, 1/(n-1), ..., 1`` (up to epsilon), Keras's fast-path test."""
    n = len(thresholds)
    return n >= 3 and np.allclose(thresholds, np.arange(n, dtype=np.float32) / (n - 1), atol=EPSILON)


def _filter_top_k(x, k: int):
    """``x`` with all but the ``k`` largest values of its last axis set to a large negative number."""
    _, idx = jax.lax.top_k(x, k)
    keep = jnp.sum(jax.nn.one_hot(idx, x.shape[-1], dtype=x.dtype), axis=-2)
    return x * keep + NEG_INF * (1 - keep)


def confusion_counts(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    thresholds: Sequence[float],
    sample_weight: ArrayLike | None = None,
    *,
    evenly: bool = False,
    top_k: int | None = None,
    class_id: int | None = None,
    multi_label: bool = False,
    label_weights: ArrayLike | None = None,
) -> dict[str, jax.Array]:
    """Weighted true/false positive/negative counts per threshold (shape ``(T,)``, or ``(T, labels)``).

    A prediction is positive at a threshold when it is strictly greater; a label is positive when nonzero.
    """
    y_true = jnp.asarray(y_true, jnp.float32)
    y_pred = jnp.asarray(y_pred, jnp.float32)
    y_pred, y_true = align_ranks(y_pred, y_true)
    weights = jnp.ones_like(y_pred)
    if sample_weight is not None:
        sample_weight = jnp.expand_dims(jnp.asarray(sample_weight, jnp.float32), -1)
        _, sample_weight = align_ranks(y_true, sample_weight, expand_rank_1=False)
        weights = jnp.broadcast_to(sample_weight, y_pred.shape)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(f"class_id needs predictions of shape (samples, classes), got {y_pred.shape}.")
        y_true, y_pred, weights = (a[..., class_id, None] for a in (y_true, y_pred, weights))
    if label_weights is not None and not multi_label:
        weights = weights * jnp.broadcast_to(jnp.asarray(label_weights, jnp.float32), y_pred.shape)
    if not multi_label:
        y_true, y_pred, weights = (a.reshape(-1) for a in (y_true, y_pred, weights))
    is_pos = (y_true != 0).astype(jnp.float32)
    thresholds = np.asarray(thresholds, np.float32)
    if evenly:
        tp, fp = _bucketed_positives(is_pos, y_pred, weights, thresholds)
    else:
        pred_pos = y_pred[None] > jnp.asarray(thresholds).reshape((-1,) + (1,) * y_pred.ndim)
        tp = jnp.sum(jnp.where(pred_pos, is_pos * weights, 0.0), axis=1)
        fp = jnp.sum(jnp.where(pred_pos, (1.0 - is_pos) * weights, 0.0), axis=1)
    tn = jnp.sum((1.0 - is_pos) * weights, axis=0) - fp
    fn = jnp.sum(is_pos * weights, axis=0) - tp
    return dict(zip(COUNTS, (tp, fp, tn, fn)))


def _bucketed_positives(is_pos, y_pred, weights, thresholds):
    """True and false positives at evenly spaced thresholds via bucket sums and a reversed cumsum."""
    n = len(thresholds)
    buckets = jnp.ceil(jnp.clip(y_pred, 0.0, 1.0) * (n - 1)) - 1
    if thresholds[0] < 0.0 or thresholds[-1] > 1.0:
        buckets = jnp.maximum(buckets, 0)
    buckets = buckets.astype(jnp.int32)

    def per_bucket(values, ids):
        return jax.ops.segment_sum(values, ids, num_segments=n)

    if y_pred.ndim > 1:  # multi-label: one bucket sum per label column
        per_bucket = jax.vmap(per_bucket, in_axes=1, out_axes=1)
    tp = jnp.flip(jnp.cumsum(jnp.flip(per_bucket(is_pos * weights, buckets), 0), axis=0), 0)
    fp = jnp.flip(jnp.cumsum(jnp.flip(per_bucket((1.0 - is_pos) * weights, buckets), 0), axis=0), 0)
    return tp, fp


class _ThresholdMetric(Metric):
    """Accumulates some of the confusion counts at fixed thresholds."""

    counts: tuple[str, ...] = ()

    def __init__(
        self,
        thresholds: float | Sequence[float] | None,
        name: str | None,
        top_k: int | None = None,
        class_id: int | None = None,
    ) -> None:
        super().__init__(name)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default = 0.5 if top_k is None else NEG_INF
        self.thresholds = _thresholds_list(thresholds, default)
        self._evenly = evenly_distributed(self.thresholds)

    def init(self) -> dict[str, jax.Array]:
        """A zero per threshold for each count this metric keeps (``counts``)."""
        return {c: jnp.zeros((len(self.thresholds),), jnp.float32) for c in self.counts}

    def update(
        self,
        state: dict[str, jax.Array],
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> dict[str, jax.Array]:
        """Add the batch's weighted counts, after ``top_k`` / ``class_id`` pick the entries that count."""
        new = confusion_counts(
            y_true,
            y_pred,
            self.thresholds,
            sample_weight,
            evenly=self._evenly,
            top_k=self.top_k,
            class_id=self.class_id,
        )
        return {c: state[c] + new[c] for c in self.counts}

    def _value(self, state):
        raise NotImplementedError(f"{type(self).__name__} must implement _value().")

    def result(self, state: dict[str, jax.Array]) -> jax.Array:
        """One value per threshold; a scalar when there is one threshold (as in Keras)."""
        value = self._value(state)
        return value[0] if len(self.thresholds) == 1 else value


def _count_metric(class_name: str, count: str, doc: str) -> type[_ThresholdMetric]:
    """A Keras-style class accumulating the weighted number of one kind of confusion outcome."""

    def __init__(self, thresholds: float | Sequence[float] | None = None, name: str | None = None) -> None:
        _ThresholdMetric.__init__(self, thresholds, name)

    namespace = {
        "__init__": __init__,
        "__doc__": doc,
        "counts": (count,),
        "__module__": __name__,
        "__qualname__": class_name,
        "_value": lambda self, state: state[count],
    }
    return type(class_name, (_ThresholdMetric,), namespace)


TruePositives = _count_metric("TruePositives", "true_positives", "Weighted count of true positives.")
FalsePositives = _count_metric("FalsePositives", "false_positives", "Weighted count of false positives.")
TrueNegatives = _count_metric("TrueNegatives", "true_negatives", "Weighted count of true negatives.")
FalseNegatives = _count_metric("FalseNegatives", "false_negatives", "Weighted count of false negatives.")


class Precision(_ThresholdMetric):
    """``tp / (tp + fp)``: how many predicted positives are real."""

    _direction = "up"

    counts = ("true_positives", "false_positives")

    def __init__(
        self,
        thresholds: float | Sequence[float] | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(thresholds, name, top_k=top_k, class_id=class_id)

    def _value(self, state):
        return divide_no_nan(state["true_positives"], state["true_positives"] + state["false_positives"])


class Recall(_ThresholdMetric):
    """``tp / (tp + fn)``: how many real positives are predicted."""

    _direction = "up"

    counts = ("true_positives", "false_negatives")

    def __init__(
        self,
        thresholds: float | Sequence[float] | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(thresholds, name, top_k=top_k, class_id=class_id)

    def _value(self, state):
        return divide_no_nan(state["true_positives"], state["true_positives"] + state["false_negatives"])


CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(Metric):
    """Area under the ROC or precision-recall curve, approximated over ``num_thresholds`` thresholds.

    With ``multi_label=True`` each label column gets its own curve and the areas are
    averaged (weighted by ``label_weights``); dagjax then needs ``num_labels`` up front,
    because metric state is created before any data is seen.
    """

    _direction = "up"

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        thresholds: Sequence[float] | None = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: ArrayLike | None = None,
        from_logits: bool = False,
    ) -> None:
        super().__init__(name)
        if str(curve).lower() not in CURVES:
            raise ValueError(f"Invalid AUC curve {curve!r}; expected one of {sorted(set(CURVES.values()))}.")
        if str(summation_method).lower() not in SUMMATIONS:
            raise ValueError(
                f"Invalid AUC summation_method {summation_method!r}; expected one of {SUMMATIONS}."
            )
        if thresholds is not None:
            inner = sorted(_thresholds_list(thresholds, 0.5))
            self.num_thresholds = len(inner) + 2
            self._evenly = evenly_distributed(np.array([0.0] + inner + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError(f"AUC num_thresholds must be an integer > 1, got {num_thresholds}.")
            self.num_thresholds = num_thresholds
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        if multi_label and not num_labels:
            raise ValueError(
                "AUC(multi_label=True) needs num_labels (the number of label columns) in dagjax, "
                "because metric state is created before data is seen: AUC(multi_label=True, "
                "num_labels=k)."
            )
        if num_labels and not multi_label:
            raise ValueError("AUC num_labels is needed only when multi_label=True.")
        self.thresholds = [0.0 - EPSILON] + inner + [1.0 + EPSILON]
        self.curve = CURVES[str(curve).lower()]
        self.summation_method = str(summation_method).lower()
        self.multi_label = multi_label
        self.num_labels = num_labels
        self.label_weights = None if label_weights is None else np.asarray(label_weights, np.float32)
        self.from_logits = from_logits

    def init(self) -> dict[str, jax.Array]:
        """The four counts, zero at every threshold (and for every label column with ``multi_label``)."""
        shape = (self.num_thresholds, self.num_labels) if self.multi_label else (self.num_thresholds,)
        return {c: jnp.zeros(shape, jnp.float32) for c in COUNTS}

    def update(
        self,
        state: dict[str, jax.Array],
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> dict[str, jax.Array]:
        """Add the batch's four weighted counts per threshold (predictions through a sigmoid if logits)."""
        if self.from_logits:
            y_pred = jax.nn.sigmoid(jnp.asarray(y_pred, jnp.float32))
        new = confusion_counts(
            y_true,
            y_pred,
            self.thresholds,
            sample_weight,
            evenly=self._evenly,
            multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
        )
        return {c: state[c] + new[c] for c in COUNTS}

    def _average_labels(self, per_threshold):
        area = jnp.sum(per_threshold, axis=0)
        if not self.multi_label:
            return area
        if self.label_weights is None:
            return jnp.mean(area)
        return divide_no_nan(jnp.sum(area * self.label_weights), jnp.sum(self.label_weights))

    def _interpolated_pr_auc(self, tp, fp, fn):
        """Davis & Goadrich's interpolation of the PR curve, in Keras's closed form."""
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        slope = divide_no_nan(dtp, jnp.maximum(p[:-1] - p[1:], 0))
        intercept = tp[1:] - slope * p[1:]
        ratio = jnp.where(
            (p[:-1] > 0) & (p[1:] > 0), divide_no_nan(p[:-1], jnp.maximum(p[1:], 0)), jnp.ones_like(p[1:])
        )
        increments = divide_no_nan(
            slope * (dtp + intercept * jnp.log(ratio)), jnp.maximum(tp[1:] + fn[1:], 0)
        )
        return self._average_labels(increments)

    def result(self, state: dict[str, jax.Array]) -> jax.Array:
        """The area under ``curve`` by ``summation_method``; with ``multi_label``, the labels' mean."""
        tp, fp, tn, fn = (state[c] for c in COUNTS)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolated_pr_auc(tp, fp, fn)
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, divide_no_nan(tp, tp + fp)
        else:
            scale = divide_no_nan(tp + fn, tn + fp)
            recall_gain = jnp.where(tp == 0, 0.0, 1.0 - scale * divide_no_nan(fn, tp))
            x = jnp.maximum(recall_gain, 0.0)
            y = jnp.where(tp == 0, 1.0, 1.0 - scale * divide_no_nan(fp, tp))
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = jnp.minimum(y[:-1], y[1:])
        else:
            heights = jnp.maximum(y[:-1], y[1:])
        return self._average_labels((x[:-1] - x[1:]) * heights)


CONFUSION_METRICS = (TruePositives, FalsePositives, TrueNegatives, FalseNegatives, Precision, Recall, AUC)
