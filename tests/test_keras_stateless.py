"""Keras's JAX-backend stateless forms, as chapter 7 of Deep Learning with Python (3rd ed.) uses them.

``model.stateless_call``, ``optimizer.build`` / ``variables`` / ``stateless_apply`` and a metric's
``stateless_update_state`` / ``stateless_result`` / ``stateless_reset_state`` give what Keras gives
from the same weights and data, and stay pure (a jitted step runs them).
"""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers

RNG = np.random.RandomState(0)
X = RNG.rand(6, 5).astype("f4")
Y = RNG.randint(0, 3, (6,))


def _pair(with_dropout=False):
    """The same small model in dagjax and Keras (Dense, BatchNormalization, optional Dropout, softmax)."""
    models = []
    for lib in (dj, keras):
        inputs = lib.Input(shape=(5,))
        x = lib.layers.Dense(4, activation="relu")(inputs)
        x = lib.layers.BatchNormalization()(x)
        if with_dropout:
            x = lib.layers.Dropout(0.5)(x)
        models.append(lib.Model(inputs, lib.layers.Dense(3, activation="softmax")(x)))
    ours, theirs = models
    ours.set_weights(theirs.get_weights())
    return ours, theirs


@pytest.fixture(scope="module")
def pair():
    dj.clear_session()
    return _pair()


def _values(variables):
    return [v.value for v in variables]


def test_stateless_call_matches_keras_in_inference(pair):
    ours, theirs = pair
    assert len(ours.non_trainable_variables) == len(theirs.non_trainable_variables) == 2
    out, new_state = jax.jit(ours.stateless_call)(
        _values(ours.trainable_variables), _values(ours.non_trainable_variables), X
    )
    np.testing.assert_allclose(np.asarray(out), np.asarray(theirs(X)), rtol=1e-5, atol=1e-6)
    for mine, their in zip(new_state, theirs.non_trainable_variables):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(their.value))


def test_stateless_call_says_which_list_is_wrong(pair):
    ours, _ = pair
    message = r"'functional.*'\.stateless_call: trainable_variables has 3 entries, the model has 6"
    with pytest.raises(ValueError, match=message):
        ours.stateless_call(_values(ours.trainable_variables)[:3], _values(ours.non_trainable_variables), X)


def test_random_model_threads_its_seed_through_non_trainable_variables():
    theirs = keras.Sequential([keras.Input((5,)), keras.layers.Dropout(0.5)])
    ours = dj.Sequential([dj.Input((5,)), layers.Dropout(0.5)])
    assert [v.name for v in ours.non_trainable_variables] == [v.name for v in theirs.non_trainable_variables]
    assert len(ours.variables) == len(ours.weights) + 1
    trainable, state = _values(ours.trainable_variables), _values(ours.non_trainable_variables)
    call = jax.jit(ours.stateless_call, static_argnames="training")
    first, state_1 = call(trainable, state, X, training=True)
    second, state_2 = call(trainable, state_1, X, training=True)
    again, _ = call(trainable, state, X, training=True)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))  # the seed alone decides the masks
    assert not np.allclose(np.asarray(first), np.asarray(second))  # an advanced seed draws new ones
    _, unchanged = call(trainable, state_1, X, training=False)
    np.testing.assert_array_equal(np.asarray(unchanged[-1]), np.asarray(state_1[-1]))


def test_optimizer_stateless_apply_needs_build_first_as_in_keras():
    optimizer = dj.optimizers.Adam()
    assert optimizer.variables == []
    with pytest.raises(ValueError, match=r"optimizer\.build\(model\.trainable_variables\)"):
        optimizer.stateless_apply([], [np.ones(2, "f4")], [np.ones(2, "f4")])


def test_the_books_jax_training_step_matches_keras(pair):
    """DLwP 3rd ed. 7.4: value_and_grad over stateless_call, then Adam's stateless_apply, jitted."""
    results = []
    for lib, model in zip((dj, keras), pair):
        loss_fn = lib.losses.SparseCategoricalCrossentropy()
        optimizer = lib.optimizers.Adam()
        optimizer.build(model.trainable_variables)

        def compute_loss(trainable, non_trainable, x, y, model=model, loss_fn=loss_fn):
            outputs, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
            return loss_fn(y, outputs), non_trainable

        @jax.jit
        def train_step(state, x, y, optimizer=optimizer, compute_loss=compute_loss):
            trainable, non_trainable, opt_vars = state
            (loss, non_trainable), grads = jax.value_and_grad(compute_loss, has_aux=True)(
                trainable, non_trainable, x, y
            )
            trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
            return loss, (trainable, non_trainable, opt_vars)

        state = (_values(model.trainable_variables), _values(model.non_trainable_variables),
                 _values(optimizer.variables))
        losses = []
        for _ in range(2):
            loss, state = train_step(state, X, Y)
            losses.append(float(loss))
        results.append((losses, state[0] + state[1]))  # weights, then BatchNormalization's moving statistics
    (our_losses, our_weights), (their_losses, their_weights) = results
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-5)
    for a, b in zip(our_weights, their_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert float(pair[0].non_trainable_variables[1].numpy()[0]) == 1.0  # the held moving variance: untouched


class _Total(dj.metrics.Metric):
    """A Keras-style metric (add_variable, assign_add) for the stateless methods."""

    def __init__(self, name="total", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign_add(dj.ops.sum(y_pred))

    def result(self):
        return self.total


@pytest.mark.parametrize("name", ["SparseCategoricalAccuracy", "Mean"])
def test_metric_stateless_methods_match_keras(name):
    ours, theirs = getattr(dj.metrics, name)(), getattr(keras.metrics, name)()
    assert [v.name for v in ours.variables] == [v.name for v in theirs.variables]
    if name == "Mean":
        args = [(X[0],), (X[1],)]
    else:
        args = [(Y, np.eye(3, dtype="f4")[(Y + i) % 3]) for i in range(2)]
    my_vars, their_vars = ours.variables, theirs.variables
    for batch in args:
        my_vars = ours.stateless_update_state(my_vars, *batch)
        their_vars = theirs.stateless_update_state(their_vars, *batch)
        np.testing.assert_allclose(
            float(ours.stateless_result(my_vars)), float(theirs.stateless_result(their_vars)), rtol=1e-6
        )
    assert float(ours.stateless_result(ours.stateless_reset_state())) == 0.0
    assert float(ours.result()) == 0.0  # the stateless methods left the held state alone


def test_keras_style_metric_stateless_methods_are_pure():
    metric = _Total()
    state = metric.stateless_update_state(metric.variables, None, np.ones((2, 3), "f4"))
    state = jax.jit(metric.stateless_update_state)(state, None, np.ones((1, 3), "f4"))
    assert float(metric.stateless_result(state)) == 9.0 and float(metric.result()) == 0.0
    with pytest.raises(ValueError, match=r"Metric 'total' has 1 variables \(total\), got a list of 2"):
        metric.stateless_result([0.0, 1.0])
