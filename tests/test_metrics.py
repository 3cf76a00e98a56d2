"""Metrics accumulated over several weighted batches match Keras 3's metrics on the same batches."""

import functools
import re

import jax
import keras
import numpy as np
import pytest
from keras.src.trainers import compile_utils

from dagjax import metrics

BATCH, CLASSES = 8, 5


def _batches(kind: str, seed: int = 0):
    """Two batches of (y_true, y_pred, sample_weight); the second has no sample weight."""
    rng = np.random.RandomState(seed)
    out = []
    for i in range(2):
        weight = rng.rand(BATCH).astype("f4") if i == 0 or kind == "sparse_weighted" else None
        if kind == "binary":
            y_true, y_pred = (rng.rand(BATCH, 1) > 0.5).astype("f4"), rng.rand(BATCH, 1).astype("f4")
        elif kind == "multilabel":
            y_true, y_pred = (rng.rand(BATCH, 3) > 0.5).astype("f4"), rng.rand(BATCH, 3).astype("f4")
        elif kind == "logits":
            y_true, y_pred = (rng.rand(BATCH, 1) > 0.5).astype("f4"), rng.randn(BATCH, 1).astype("f4") * 3
        elif kind == "exact":
            y_true, y_pred = (
                rng.randint(0, 3, (BATCH, 1)).astype("f4"),
                rng.randint(0, 3, (BATCH, 1)).astype("f4"),
            )
        elif kind == "regression":
            y_true, y_pred = rng.rand(BATCH, 3).astype("f4") + 0.1, rng.rand(BATCH, 3).astype("f4") + 0.1
        else:
            labels = rng.randint(0, CLASSES, BATCH)
            y_pred = np.asarray(jax.nn.softmax(rng.randn(BATCH, CLASSES) * 2), "f4")
            y_true = {
                "categorical": np.eye(CLASSES, dtype="f4")[labels],
                "sparse": labels.astype("int32"),
                "sparse_weighted": labels.astype("int32"),
                "sparse_column": labels[:, None].astype("int32"),
            }[kind]
        out.append((y_true, y_pred, weight))
    return out


# (class name, kwargs, data kind); Keras has the same class with the same arguments.
CASES = [
    ("Accuracy", {}, "exact"),
    ("BinaryAccuracy", {}, "binary"),
    ("BinaryAccuracy", {"threshold": 0.7}, "binary"),
    ("CategoricalAccuracy", {}, "categorical"),
    ("SparseCategoricalAccuracy", {}, "sparse"),
    ("SparseCategoricalAccuracy", {}, "sparse_column"),
    ("TopKCategoricalAccuracy", {}, "categorical"),
    ("TopKCategoricalAccuracy", {"k": 2}, "categorical"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("MeanSquaredError", {}, "regression"),
    ("RootMeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "regression"),
    ("CosineSimilarity", {}, "regression"),
    ("LogCoshError", {}, "regression"),
    ("Hinge", {}, "binary"),
    ("SquaredHinge", {}, "binary"),
    ("CategoricalHinge", {}, "categorical"),
    ("KLDivergence", {}, "categorical"),
    ("Poisson", {}, "regression"),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, "binary"),
    ("BinaryCrossentropy", {"from_logits": True}, "logits"),
    ("CategoricalCrossentropy", {}, "categorical"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 1}, "sparse_weighted"),
    ("AUC", {}, "binary"),
    ("AUC", {"num_thresholds": 7, "from_logits": True}, "logits"),
    ("AUC", {"thresholds": [0.1, 0.45, 0.8]}, "binary"),
    ("AUC", {"label_weights": [0.2, 1.0, 0.5]}, "multilabel"),
    ("AUC", {"multi_label": True, "num_labels": 3}, "multilabel"),
    ("Precision", {}, "binary"),
    ("Precision", {"thresholds": [0.2, 0.5, 0.9]}, "binary"),
    ("Precision", {"top_k": 2}, "categorical"),
    ("Precision", {"class_id": 1}, "multilabel"),
    ("Recall", {}, "binary"),
    ("Recall", {"thresholds": [0.0, 0.5, 1.0]}, "multilabel"),
    ("Recall", {"top_k": 1, "class_id": 2}, "categorical"),
    ("TruePositives", {}, "binary"),
    ("FalsePositives", {"thresholds": [0.3, 0.6]}, "binary"),
    ("TrueNegatives", {}, "multilabel"),
    ("FalseNegatives", {}, "binary"),
]
IDS = [f"{name}-{kind}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw, kind in CASES]


def _keras_kwargs(kwargs):
    return {k: (float(v) if k == "label_smoothing" else v) for k, v in kwargs.items()}


def _ours_over(metric_list, batches) -> list:
    """dagjax results after each batch, for each metric, from one jitted program."""

    @jax.jit
    def run(batches):
        out = []
        for metric in metric_list:
            state, results = metric.init(), []
            for y_true, y_pred, weight in batches:
                state = metric.update(state, y_true, y_pred, weight)
                results.append(metric.result(state))
            assert all(leaf.dtype == np.float32 for leaf in jax.tree.leaves(state))
            out.append(results)
        return out

    return run(batches)


def _keras_over(metric_list, batches) -> list:
    """Keras results after each batch, for each metric, through its stateless API in one jitted program."""

    @jax.jit
    def run(batches):
        out = []
        for metric in metric_list:
            state, results = [v.value for v in metric.variables], []
            for y_true, y_pred, weight in batches:
                state = metric.stateless_update_state(state, y_true, y_pred, sample_weight=weight)
                results.append(metric.stateless_result(state))
            out.append(results)
        return out

    return run(batches)


@functools.cache
def _results_by_kind(kind: str) -> dict:
    """Results of every case on ``kind`` data, for dagjax and Keras: two compiles per kind, not per case."""
    cases = [(i, name, kwargs) for i, (name, kwargs, k) in enumerate(CASES) if k == kind]
    ours = [getattr(metrics, name)(**kwargs) for _, name, kwargs in cases]
    theirs = [getattr(keras.metrics, name)(**_keras_kwargs(kwargs)) for _, name, kwargs in cases]
    batches = _batches(kind)
    return {
        i: (a.name, b.name, r, e)
        for (i, _, _), a, b, r, e in zip(
            cases, ours, theirs, _ours_over(ours, batches), _keras_over(theirs, batches)
        )
    }


def _assert_close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_metric_matches_keras_over_batches(index):
    ours_name, keras_name, ours, theirs = _results_by_kind(CASES[index][2])[index]
    assert ours_name == re.sub(r"_\d+$", "", keras_name)  # Keras numbers repeated default names
    for ours_result, keras_result in zip(ours, theirs):
        _assert_close(ours_result, keras_result)


def test_ignore_class_entries_never_count():
    """Keras drops ignored entries from the count only when given sample weights; dagjax always does."""
    metric = metrics.SparseCategoricalCrossentropy(ignore_class=1)
    y_true, y_pred, _ = _batches("sparse")[0]
    unweighted, ones = (
        _ours_over([metric], [(y_true, y_pred, None)]),
        _ours_over([metric], [(y_true, y_pred, np.ones(BATCH, "f4"))]),
    )
    _assert_close(unweighted, ones)
    keras_metric = keras.metrics.SparseCategoricalCrossentropy(ignore_class=1)
    keras_metric.update_state(y_true, y_pred, sample_weight=np.ones(BATCH, "f4"))
    _assert_close(unweighted[0][0], keras_metric.result())


@pytest.mark.parametrize(
    "kind,kwargs", [("binary", {}), ("multilabel", {"multi_label": True, "num_labels": 3})]
)
def test_auc_curves_and_summations_match_keras(kind, kwargs):
    """Curve and summation change only ``result``, so one accumulated state serves every variant."""
    variants = [{"label_weights": [0.2, 1.0, 0.5]}] if kwargs else []
    variants += [
        {"curve": "ROC", "summation_method": "majoring"},
        {"curve": "ROC", "summation_method": "minoring"},
        {"curve": "PR", "summation_method": "interpolation"},
        {"curve": "PR", "summation_method": "minoring"},
        {"curve": "PRGAIN", "summation_method": "interpolation"},
    ][: 2 if kwargs else None]
    ours = [metrics.AUC(**kwargs, **variant) for variant in variants]
    theirs = [keras.metrics.AUC(**kwargs, **variant) for variant in variants]

    @jax.jit
    def ours_results(batches):
        state = ours[0].init()
        for y_true, y_pred, weight in batches:
            state = ours[0].update(state, y_true, y_pred, weight)
        return [metric.result(state) for metric in ours]

    @jax.jit
    def keras_results(batches):
        state = [v.value for v in theirs[0].variables]
        for y_true, y_pred, weight in batches:
            state = theirs[0].stateless_update_state(state, y_true, y_pred, sample_weight=weight)
        return [metric.stateless_result(state) for metric in theirs]

    batches = _batches(kind)
    for result, expected in zip(ours_results(batches), keras_results(batches)):
        _assert_close(result, expected)


PAD_CASES = [
    ("BinaryAccuracy", {}, "binary"),
    ("MeanSquaredError", {}, "regression"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 1}, "sparse_weighted"),
    ("AUC", {}, "binary"),
    ("AUC", {"multi_label": True, "num_labels": 3}, "multilabel"),
    ("Precision", {"top_k": 2}, "categorical"),
    ("Recall", {"thresholds": [0.0, 0.5, 1.0]}, "multilabel"),
]


@pytest.mark.parametrize("name,kwargs,kind", PAD_CASES)
def test_zero_weight_padding_rows_do_not_count(name, kwargs, kind):
    """Rows of weight 0 (the padding that fills a last batch) leave every metric unchanged, even NaN rows."""
    metric = getattr(metrics, name)(**kwargs)
    (y_true, y_pred, weight), (pad_true, pad_pred, _) = _batches(kind)[0], _batches(kind, seed=1)[0]
    pad_pred = np.where(np.arange(BATCH)[:, None] == 0, np.nan, pad_pred).astype("f4")
    padded = (
        np.concatenate([y_true, pad_true]),
        np.concatenate([y_pred, pad_pred]),
        np.concatenate([weight, np.zeros(BATCH, "f4")]),
    )
    _assert_close(_ours_over([metric], [padded]), _ours_over([metric], [(y_true, y_pred, weight)]))


def test_mean_tracks_a_weighted_scalar_like_keras():
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    state = ours.init()
    for value, count in [(0.5, 8), (1.5, 8), (3.0, 3)]:
        state = ours.update(state, np.float32(value), sample_weight=np.float32(count))
        theirs.update_state(value, sample_weight=count)
    np.testing.assert_allclose(np.asarray(ours.result(state)), np.asarray(theirs.result()), rtol=1e-6)
    state = ours.update(ours.init(), np.array([[1.0, 2.0], [3.0, 5.0]], "f4"))
    np.testing.assert_allclose(np.asarray(ours.result(state)), 2.75, rtol=1e-6)


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape",
    [
        ((4, 1), (4, 1)),
        ((4,), (4, 1)),
        ((4,), (4, 5)),
        ((4, 1), (4, 5)),
        ((4, 5), (4, 5)),
        ((4, 3, 5), (4, 3, 5)),
    ],
)
@pytest.mark.parametrize("identifier", ["accuracy", "acc"])
def test_accuracy_resolution_follows_keras(identifier, y_true_shape, y_pred_shape):
    expected = compile_utils.get_metric(identifier, np.zeros(y_true_shape), np.zeros(y_pred_shape))
    metric = metrics.get(identifier, y_true_shape, y_pred_shape)
    assert type(metric).__name__ == type(expected).__name__
    assert metric.name == expected.name == identifier


@pytest.mark.parametrize(
    "identifier,cls",
    [
        ("mae", metrics.MeanAbsoluteError),
        ("mse", metrics.MeanSquaredError),
        ("auc", metrics.AUC),
        ("AUC", metrics.AUC),
        ("precision", metrics.Precision),
        ("recall", metrics.Recall),
        ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy),
        ("sparse_top_k_categorical_accuracy", metrics.SparseTopKCategoricalAccuracy),
        ("binary_crossentropy", metrics.BinaryCrossentropy),
        ("root_mean_squared_error", metrics.RootMeanSquaredError),
        ("categorical_accuracy", metrics.CategoricalAccuracy),
    ],
)
def test_get_by_name_matches_keras(identifier, cls):
    metric = metrics.get(identifier, (4, 5), (4, 5))
    expected = compile_utils.get_metric(identifier, np.zeros((4, 5)), np.zeros((4, 5)))
    assert type(metric) is cls and type(metric).__name__ == type(expected).__name__
    assert metric.name == expected.name == identifier


def test_get_wraps_objects_and_functions():
    auc = metrics.AUC(num_thresholds=50)
    assert metrics.get(auc) is auc

    def abs_error(y_true, y_pred):
        return abs(y_true - y_pred)

    metric = metrics.get(abs_error)
    expected = compile_utils.get_metric(abs_error, np.zeros((4, 1)), np.zeros((4, 1)))
    assert metric.name == expected.name == "abs_error"
    y_true, y_pred, weight = _batches("regression")[0]
    state = metric.update(metric.init(), y_true, y_pred, weight)
    expected.update_state(y_true, y_pred, sample_weight=weight)
    np.testing.assert_allclose(np.asarray(metric.result(state)), np.asarray(expected.result()), rtol=1e-6)


def test_bad_metric_arguments_say_how_to_fix_them():
    with pytest.raises(ValueError, match="Unknown metric 'acuracy'.*binary_accuracy"):
        metrics.get("acuracy")
    with pytest.raises(ValueError, match="needs the target and prediction shapes"):
        metrics.get("accuracy")
    with pytest.raises(ValueError, match="needs num_labels"):
        metrics.AUC(multi_label=True)
    with pytest.raises(ValueError, match="Invalid AUC curve 'ROCK'"):
        metrics.AUC(curve="ROCK")
    with pytest.raises(ValueError, match=r"Threshold values must be in \[0, 1\]"):
        metrics.Precision(thresholds=[0.5, 1.5])


def _abs_error(y_true, y_pred):
    return abs(y_true - y_pred)


METRIC_CLASSES = sorted(
    name for name, obj in vars(metrics).items() if isinstance(obj, type) and issubclass(obj, metrics.Metric)
)


@pytest.mark.parametrize("name", METRIC_CLASSES)
def test_direction_is_the_keras_direction(name):
    """``direction``, which ``mode="auto"`` reads, is the ``_direction`` Keras's class of that name sets."""

    def instance(cls):
        return cls(_abs_error) if name == "MeanMetricWrapper" else cls()

    expected = getattr(instance(getattr(keras.metrics, name)), "_direction", None)
    assert instance(getattr(metrics, name)).direction == expected
