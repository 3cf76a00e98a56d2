"""Keras's stateful metric interface: update_state / result / reset_state, and Keras-style Metric subclasses.

Sequences of ``update_state`` then ``result`` match ``keras.metrics``; a metric
written as in the keras.io guide ("Training & evaluation with the built-in
methods", CategoricalTruePositives) runs eagerly and compiled into ``fit``,
logging what Keras logs from the same weights.
"""

import jax.numpy as jnp
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import metrics

RNG = np.random.RandomState(3)
LABELS = RNG.randint(0, 4, (3, 6))
PROBS = RNG.dirichlet(np.ones(4), (3, 6)).astype("f4")
WEIGHTS = [RNG.rand(6).astype("f4"), None, RNG.rand(6).astype("f4")]


def _binary(i):
    return (LABELS[i] > 1).astype("f4")[:, None], PROBS[i][:, :1] * 2


@pytest.mark.parametrize(
    "name,kwargs,data",
    [
        ("SparseCategoricalAccuracy", {}, lambda i: (LABELS[i], PROBS[i])),
        ("CategoricalCrossentropy", {}, lambda i: (np.eye(4, dtype="f4")[LABELS[i]], PROBS[i])),
        ("AUC", {"num_thresholds": 20}, _binary),
        ("RootMeanSquaredError", {}, lambda i: (np.eye(4, dtype="f4")[LABELS[i]], PROBS[i])),
    ],
)
def test_update_state_sequence_matches_keras(name, kwargs, data):
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    for i in (0, 1):
        y_true, y_pred = data(i)
        ours.update_state(y_true, y_pred, sample_weight=WEIGHTS[i])
        theirs.update_state(y_true, y_pred, sample_weight=WEIGHTS[i])
        np.testing.assert_allclose(np.asarray(ours.result()), np.asarray(theirs.result()), rtol=1e-5)
    ours.reset_state()
    theirs.reset_state()
    np.testing.assert_allclose(np.asarray(ours.result()), np.asarray(theirs.result()))
    y_true, y_pred = data(0)
    called_ours, called_theirs = ours(y_true, y_pred), theirs(y_true, y_pred)
    np.testing.assert_allclose(np.asarray(called_ours), np.asarray(called_theirs), rtol=1e-5)


def test_mean_update_state_takes_values_like_keras():
    ours, theirs = metrics.Mean(), keras.metrics.Mean()
    for values, weight in [([1.0, 3.0], None), ([5.0], 3.0)]:
        ours.update_state(np.asarray(values, "f4"), sample_weight=weight)
        theirs.update_state(np.asarray(values, "f4"), sample_weight=weight)
    np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-6)


def _categorical_true_positives(base, ops):
    """The keras.io guide's CategoricalTruePositives on ``base``, written with ``ops`` (keras.ops or jnp)."""

    class CategoricalTruePositives(base):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            values = ops.cast(y_true, "int32") == ops.cast(y_pred, "int32")
            values = ops.cast(values, "float32")
            if sample_weight is not None:
                sample_weight = ops.cast(sample_weight, "float32")
                values = ops.multiply(values, sample_weight)
            self.true_positives.assign_add(ops.sum(values))

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    return CategoricalTruePositives


class _KerasCategoricalTruePositives(_categorical_true_positives(keras.metrics.Metric, keras.ops)):
    """Keras 3.15 on jax 0.10 cannot return the variable itself from ``result`` (jax refuses ``__jax_array__``
    when abstractifying); dagjax can, so only the Keras side returns its value."""

    def result(self):
        return self.true_positives.value


class _JNP_AS_OPS:
    """The few ``keras.ops`` names the guide's metric uses, in jax.numpy (``dagjax.ops`` is separate work)."""

    reshape, argmax, sum, multiply = jnp.reshape, jnp.argmax, jnp.sum, jnp.multiply
    cast = staticmethod(jnp.asarray)


class WeightedMeanError(metrics.Metric):
    """Two variables, a non-zero initializer, the default reset_state and a dict-free scalar result."""

    def __init__(self, name="weighted_mean_error", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_weight(name="total", initializer="ones")
        self.count = self.add_weight(name="count", shape=(), initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign(self.total + jnp.sum(jnp.abs(y_true - y_pred)))
        self.count.assign_add(jnp.asarray(y_true).size)

    def result(self):
        return self.total / jnp.maximum(self.count.value, 1.0)


def test_keras_style_metric_eager_and_pure_agree():
    metric = WeightedMeanError()
    assert [v.name for v in metric.variables] == ["total", "count"]
    assert float(metric.total.numpy()) == 1.0  # the initializer's value until the first reset
    metric.reset_state()  # Keras's default: every variable to zeros
    metric.update_state(np.ones((2, 3), "f4"), np.zeros((2, 3), "f4"))
    assert float(metric.result()) == pytest.approx(1.0)
    state = metric.init()
    assert {k: float(v) for k, v in state.items()} == {"total": 0.0, "count": 0.0}
    state = metric.update(state, np.full((2, 2), 3.0, "f4"), np.zeros((2, 2), "f4"))
    assert float(metric.result(state)) == pytest.approx(3.0)
    assert float(metric.result()) == pytest.approx(1.0)  # the pure path left the held values alone


def test_keras_style_metric_outside_init_is_a_clear_error():
    class Forgot(metrics.Metric):
        def __init__(self):
            self.v = self.add_variable((), "zeros")

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Forgot()


def test_guide_metric_compiled_into_fit_logs_what_keras_logs():
    rng = np.random.RandomState(0)
    x, y = rng.rand(24, 5).astype("f4"), rng.randint(0, 3, (24, 1))
    k_in = keras.Input((5,))
    k_model = keras.Model(k_in, keras.layers.Dense(3, activation="softmax")(k_in))
    d_in = dj.Input((5,))
    d_model = dj.Model(d_in, dj.layers.Dense(3, activation="softmax")(d_in))
    d_model.set_weights(k_model.get_weights())
    common = dict(optimizer="sgd", loss="sparse_categorical_crossentropy")
    k_model.compile(**common, metrics=[_KerasCategoricalTruePositives()])
    d_model.compile(**common, metrics=[_categorical_true_positives(metrics.Metric, _JNP_AS_OPS)()])
    fit = dict(batch_size=8, epochs=2, verbose=0, shuffle=False)
    k_logs, d_logs = k_model.fit(x, y, **fit).history, d_model.fit(x, y, **fit).history
    np.testing.assert_allclose(d_logs["categorical_true_positives"], k_logs["categorical_true_positives"])
    np.testing.assert_allclose(d_logs["loss"], k_logs["loss"], rtol=1e-5)
    k_eval = k_model.evaluate(x, y, verbose=0, return_dict=True)
    d_eval = d_model.evaluate(x, y, verbose=0, return_dict=True)
    assert d_eval["categorical_true_positives"] == k_eval["categorical_true_positives"]
