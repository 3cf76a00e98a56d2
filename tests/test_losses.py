"""Losses match Keras 3 (per-sample values, reductions, sample weights), and padding rows never count."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

from dagjax import losses

RNG = np.random.RandomState(0)
BATCH, CLASSES, PAD = 6, 4, 3


def _data(kind: str, batch: int = BATCH, rng=RNG):
    """Targets and predictions of the kind a loss expects."""
    if kind == "regression":
        return rng.randn(batch, 3).astype("f4"), rng.randn(batch, 3).astype("f4")
    if kind == "positive":
        return rng.rand(batch, 3).astype("f4") * 3, rng.rand(batch, 3).astype("f4") * 3 + 0.1
    if kind == "binary":
        return (rng.rand(batch, 3) > 0.5).astype("f4"), rng.uniform(0.02, 0.98, (batch, 3)).astype("f4")
    if kind == "binary_column":
        return (rng.rand(batch) > 0.5).astype("f4"), rng.uniform(0.02, 0.98, (batch, 1)).astype("f4")
    if kind == "logits":
        return (rng.rand(batch, 3) > 0.5).astype("f4"), (rng.randn(batch, 3) * 3).astype("f4")
    if kind == "signs":
        return np.sign(rng.randn(batch, 3)).astype("f4"), rng.randn(batch, 3).astype("f4")
    probs = jax.nn.softmax(rng.randn(batch, CLASSES) * 2).__array__().astype("f4")
    labels = rng.randint(0, CLASSES, batch)
    if kind == "categorical":
        return np.eye(CLASSES, dtype="f4")[labels], probs
    if kind == "categorical_logits":
        return np.eye(CLASSES, dtype="f4")[labels], (rng.randn(batch, CLASSES) * 2).astype("f4")
    if kind == "sparse":
        return labels.astype("int32"), probs
    if kind == "sparse_column_logits":
        return labels[:, None].astype("int32"), (rng.randn(batch, CLASSES) * 2).astype("f4")
    raise AssertionError(kind)


# (dagjax class name, kwargs, data kind); Keras has the same class under the same name and arguments.
CASES = [
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "positive"),
    ("Huber", {}, "regression"),
    ("Huber", {"delta": 0.3}, "regression"),
    ("LogCosh", {}, "regression"),
    ("BinaryCrossentropy", {}, "binary"),
    ("BinaryCrossentropy", {}, "binary_column"),
    ("BinaryCrossentropy", {"label_smoothing": 0.2}, "binary"),
    ("BinaryCrossentropy", {"from_logits": True}, "logits"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "logits"),
    ("CategoricalCrossentropy", {}, "categorical"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "categorical"),
    ("CategoricalCrossentropy", {"from_logits": True}, "categorical_logits"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "categorical_logits"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse_column_logits"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 2}, "sparse"),
    ("KLDivergence", {}, "categorical"),
    ("Poisson", {}, "positive"),
    ("Hinge", {}, "binary"),
    ("Hinge", {}, "signs"),
    ("SquaredHinge", {}, "binary"),
    ("CategoricalHinge", {}, "categorical"),
    ("CosineSimilarity", {}, "regression"),
]
IDS = [f"{name}-{kind}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw, kind in CASES]


def _close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kwargs,kind", CASES, ids=IDS)
def test_loss_matches_keras(name, kwargs, kind):
    """Per-sample values, and the default reduction with and without sample weights."""
    y_true, y_pred = _data(kind)
    sample_weight = RNG.rand(BATCH).astype("f4")
    ours, theirs = getattr(losses, name)(**kwargs), getattr(keras.losses, name)(**kwargs)
    assert ours.name == theirs.name
    plain, weighted, values = (
        ours(y_true, y_pred),
        ours(y_true, y_pred, sample_weight),
        ours.values(y_true, y_pred),
    )
    _close(plain, theirs(y_true, y_pred))
    _close(weighted, theirs(y_true, y_pred, sample_weight=sample_weight))
    if "ignore_class" not in kwargs:  # there Keras's values carry a mask that only its reduction uses
        _close(values, getattr(keras.losses, name)(reduction=None, **kwargs)(y_true, y_pred))


@pytest.mark.parametrize("reduction", ["sum", "mean", "mean_with_sample_weight", "none", None])
@pytest.mark.parametrize("name,kwargs,kind", [CASES[0], CASES[18], CASES[13]])
def test_reductions_match_keras(reduction, name, kwargs, kind):
    y_true, y_pred = _data(kind)
    sample_weight = RNG.rand(BATCH).astype("f4")
    ours = getattr(losses, name)(reduction=reduction, **kwargs)
    theirs = getattr(keras.losses, name)(reduction=reduction, **kwargs)
    plain, weighted = ours(y_true, y_pred), ours(y_true, y_pred, sample_weight)
    _close(plain, theirs(y_true, y_pred))
    _close(weighted, theirs(y_true, y_pred, sample_weight=sample_weight))


@pytest.mark.parametrize("name,kwargs,kind", CASES, ids=IDS)
def test_padded_batch_gives_the_unpadded_loss(name, kwargs, kind):
    """Padding rows (any finite junk, any weight) change nothing, in value or in the denominator."""
    y_true, y_pred = _data(kind)
    junk_true, junk_pred = _data(kind, batch=PAD, rng=np.random.RandomState(1))
    sample_weight = RNG.rand(BATCH).astype("f4")
    padded_weight = np.concatenate([sample_weight, np.full(PAD, 7.0, "f4")])
    mask = np.concatenate([np.ones(BATCH, "f4"), np.zeros(PAD, "f4")])
    loss = getattr(losses, name)(**kwargs)
    padded = jax.jit(loss)(
        np.concatenate([y_true, junk_true]), np.concatenate([y_pred, junk_pred]), padded_weight, mask
    )
    _close(padded, getattr(keras.losses, name)(**kwargs)(y_true, y_pred, sample_weight=sample_weight))


def test_cosine_similarity_along_another_axis():
    y_true, y_pred = _data("regression")
    ours, theirs = losses.CosineSimilarity(axis=0), keras.losses.CosineSimilarity(axis=0)
    _close(ours.values(y_true, y_pred), keras.losses.cosine_similarity(y_true, y_pred, axis=0))
    _close(ours(y_true, y_pred), theirs(y_true, y_pred))


def test_padding_masks_non_finite_rows():
    """Zero padding rows fed to a probability crossentropy give 0/0 = NaN, which the mask must drop."""
    y_true, y_pred = _data("categorical")
    loss = losses.CategoricalCrossentropy()
    padded = loss(
        np.concatenate([y_true, np.zeros((2, CLASSES), "f4")]),
        np.concatenate([y_pred, np.zeros((2, CLASSES), "f4")]),
        mask=np.array([1.0] * BATCH + [0.0, 0.0], "f4"),
    )
    _close(padded, keras.losses.CategoricalCrossentropy()(y_true, y_pred))


def test_sequence_outputs_with_timestep_weights():
    """(batch, T, k) predictions give (batch, T) values; (batch, T) and (batch,) weights work like Keras."""
    y_true = np.eye(CLASSES, dtype="f4")[RNG.randint(0, CLASSES, (BATCH, 5))]
    y_pred = jax.nn.softmax(RNG.randn(BATCH, 5, CLASSES)).__array__()
    per_step = RNG.rand(BATCH, 5).astype("f4")
    ours, theirs = losses.CategoricalCrossentropy(), keras.losses.CategoricalCrossentropy()
    assert ours.values(y_true, y_pred).shape == (BATCH, 5)
    _close(ours(y_true, y_pred, per_step), theirs(y_true, y_pred, per_step))
    per_sample = RNG.rand(BATCH).astype("f4")
    _close(ours(y_true, y_pred, per_sample), theirs(y_true, y_pred, per_sample[:, None]))


def test_ignore_class_gradient_is_finite():
    """Ignored entries leave the probabilities untouched, so the gradient has no NaN (0/0) in it."""
    y_true = np.array([0, 2, 2, 1], "int32")
    y_pred = jax.nn.softmax(jnp.asarray(RNG.randn(4, 3), jnp.float32))
    grad = jax.jit(jax.grad(lambda p: losses.SparseCategoricalCrossentropy(ignore_class=2)(y_true, p)))(
        y_pred
    )
    assert np.isfinite(np.asarray(grad)).all()
    assert np.all(np.asarray(grad)[1:3] == 0)


@pytest.mark.parametrize(
    "identifier,cls,kind",
    [
        ("mse", losses.MeanSquaredError, "regression"),
        ("mean_squared_error", losses.MeanSquaredError, "regression"),
        ("mae", losses.MeanAbsoluteError, "regression"),
        ("mape", losses.MeanAbsolutePercentageError, "regression"),
        ("msle", losses.MeanSquaredLogarithmicError, "positive"),
        ("huber", losses.Huber, "regression"),
        ("log_cosh", losses.LogCosh, "regression"),
        ("binary_crossentropy", losses.BinaryCrossentropy, "binary"),
        ("categorical_crossentropy", losses.CategoricalCrossentropy, "categorical"),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy, "sparse"),
        ("kl_divergence", losses.KLDivergence, "categorical"),
        ("kld", losses.KLDivergence, "categorical"),
        ("poisson", losses.Poisson, "positive"),
        ("hinge", losses.Hinge, "binary"),
        ("squared_hinge", losses.SquaredHinge, "signs"),
        ("cosine_similarity", losses.CosineSimilarity, "regression"),
        ("CategoricalHinge", losses.CategoricalHinge, "categorical"),
    ],
)
def test_get_by_keras_name(identifier, cls, kind):
    loss = losses.get(identifier)
    assert type(loss) is cls
    assert loss.name == (identifier if identifier[0].islower() else "categorical_hinge")
    y_true, y_pred = _data(kind)
    expected = keras.losses.get(identifier)
    _close(
        loss(y_true, y_pred),
        expected(y_true, y_pred)
        if isinstance(expected, keras.losses.Loss)
        else np.mean(expected(y_true, y_pred)),
    )


def test_get_other_identifiers():
    assert losses.get(None) is None
    mse = losses.MeanSquaredError()
    assert losses.get(mse) is mse

    def double_abs(y_true, y_pred):
        return 2 * jnp.mean(jnp.abs(y_true - y_pred), axis=-1)

    wrapped = losses.get(double_abs)
    assert wrapped.name == "double_abs"
    y_true, y_pred = _data("regression")
    _close(wrapped(y_true, y_pred), 2 * keras.losses.MeanAbsoluteError()(y_true, y_pred))


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape,cls",
    [
        ((None, 1), (None, 1), losses.BinaryCrossentropy),
        ((None,), (None, 5), losses.SparseCategoricalCrossentropy),
        ((None, 1), (None, 5), losses.SparseCategoricalCrossentropy),
        ((None, 5), (None, 5), losses.CategoricalCrossentropy),
    ],
)
def test_crossentropy_picked_by_shapes(y_true_shape, y_pred_shape, cls):
    assert type(losses.get("crossentropy", y_true_shape, y_pred_shape)) is cls


def test_bad_identifiers_say_what_is_valid():
    with pytest.raises(ValueError, match="Unknown loss 'msqe'.*mean_squared_error"):
        losses.get("msqe")
    with pytest.raises(ValueError, match="needs the target and prediction shapes"):
        losses.get("crossentropy")
    with pytest.raises(TypeError, match="Could not interpret loss 3"):
        losses.get(3)
    with pytest.raises(ValueError, match="Invalid reduction 'avg'"):
        losses.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="one-hot targets shaped like the predictions"):
        losses.CategoricalCrossentropy()(np.zeros(3, "int32"), np.ones((3, 4), "f4") / 4)
