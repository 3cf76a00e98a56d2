"""Keras's JAX-backend ``train_step(self, state, data)`` and ``test_step(self, state, data)`` in fit/evaluate.

The steps are the keras.io guide's ("Customizing what happens in fit() with JAX"), written once
and subclassed from ``keras.Model`` and from ``dj.Model``: from the same weights and data, fit's
per-epoch logs, the trained weights (moving statistics included) and evaluate's results equal
Keras 3's. The data's last batch is short, as Keras runs it; the metrics are reset each epoch.
"""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj

RNG = np.random.RandomState(0)
X = RNG.rand(40, 4).astype("f4")
Y = RNG.rand(40, 1).astype("f4")
LABELS = RNG.randint(0, 3, (40,))


def _update_metrics(model, metrics_variables, loss, y, y_pred, sample_weight):
    """The guide's loop over ``self.metrics``: the loss tracker gets the loss, the others y and y_pred."""
    new_metrics_vars, logs = [], {}
    for metric in model.metrics:
        start = len(new_metrics_vars)
        this_metric_vars = metrics_variables[start : start + len(metric.variables)]
        if metric.name == "loss":
            this_metric_vars = metric.stateless_update_state(this_metric_vars, loss, sample_weight=None)
        else:
            this_metric_vars = metric.stateless_update_state(
                this_metric_vars, y, y_pred, sample_weight=sample_weight
            )
        logs[metric.name] = metric.stateless_result(this_metric_vars)
        new_metrics_vars += this_metric_vars
    return logs, new_metrics_vars


def guide_model_class(lib):
    """The guide's first example and its test_step, subclassing ``lib.Model``."""

    class CustomModel(lib.Model):
        def compute_loss_and_updates(self, trainable, non_trainable, metrics_vars, x, y, sw, training=False):
            y_pred, non_trainable = self.stateless_call(trainable, non_trainable, x, training=training)
            loss, (trainable, non_trainable, metrics_vars) = self.stateless_compute_loss(
                trainable, non_trainable, metrics_vars, x=x, y=y, y_pred=y_pred, sample_weight=sw,
                training=training,
            )
            return loss, (y_pred, non_trainable, metrics_vars)

        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            x, y, sw = lib.utils.unpack_x_y_sample_weight(data)
            grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
            (loss, (y_pred, non_trainable, metrics_vars)), grads = grad_fn(
                trainable, non_trainable, metrics_vars, x, y, sw, training=True
            )
            trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
            logs, metrics_vars = _update_metrics(self, metrics_vars, loss, y, y_pred, sw)
            return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)

        def test_step(self, state, data):
            trainable, non_trainable, metrics_vars = state
            x, y, sw = lib.utils.unpack_x_y_sample_weight(data)
            loss, (y_pred, non_trainable, metrics_vars) = self.compute_loss_and_updates(
                trainable, non_trainable, metrics_vars, x, y, sw
            )
            logs, metrics_vars = _update_metrics(self, metrics_vars, loss, y, y_pred, sw)
            return logs, (trainable, non_trainable, metrics_vars)

    return CustomModel


def tracker_model_class(lib):
    """The guide's lower-level example: the model's own Mean and MAE, listed by its ``metrics`` property,
    and a metric written with ``add_variable``."""

    class SampleCount(lib.metrics.Metric):
        def __init__(self, name="samples"):
            super().__init__(name=name)
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.count.assign(self.count + lib.ops.sum(lib.ops.ones_like(y_true[:, 0])))

        def result(self):
            return self.count.value

    class CustomModel(lib.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = lib.metrics.Mean(name="loss")
            self.mae_metric = lib.metrics.MeanAbsoluteError(name="mae")
            self.sample_count = SampleCount()
            self.loss_fn = lib.losses.MeanSquaredError()

        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            x, y = data

            def loss_and_updates(trainable, non_trainable):
                y_pred, non_trainable = self.stateless_call(trainable, non_trainable, x, training=True)
                return self.loss_fn(y, y_pred), (y_pred, non_trainable)

            (loss, (y_pred, non_trainable)), grads = jax.value_and_grad(loss_and_updates, has_aux=True)(
                trainable, non_trainable
            )
            trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
            logs, metrics_vars = _update_metrics(self, metrics_vars, loss, y, y_pred, None)
            return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric, self.sample_count]

    return CustomModel


def classifier_class(lib):
    """Deep Learning with Python's (3rd ed., ch. 7) step: ``self.compute_loss`` and compile's metrics."""

    class CustomModel(lib.Model):
        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            inputs, targets = data

            def loss_and_updates(trainable, non_trainable):
                predictions, non_trainable = self.stateless_call(trainable, non_trainable, inputs, True)
                return self.compute_loss(y=targets, y_pred=predictions), (predictions, non_trainable)

            (loss, (predictions, non_trainable)), grads = jax.value_and_grad(loss_and_updates, has_aux=True)(
                trainable, non_trainable
            )
            trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
            logs, metrics_vars = _update_metrics(self, metrics_vars, loss, targets, predictions, None)
            return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)

    return CustomModel


def _build(lib, make_class, units=1, activation=None, normalize=True):
    inputs = lib.Input(shape=(4,))
    x = lib.layers.Dense(3, activation="relu")(inputs)
    if normalize:
        x = lib.layers.BatchNormalization()(x)
    return make_class(lib)(inputs, lib.layers.Dense(units, activation=activation)(x))


def _trained_pair(make_class, compile_args, y, epochs=1, samples=32, fit=None, **build):
    """Both libraries' models, set to the same weights, compiled alike and fit on the same batches
    (``fit``: more arguments to fit, ``steps_per_execution`` among them for compile)."""
    fit = dict(fit or {})
    steps_per_execution = fit.pop("steps_per_execution", 1)
    dj.clear_session()
    keras.utils.clear_session()
    theirs, ours = _build(keras, make_class, **build), _build(dj, make_class, **build)
    ours.set_weights(theirs.get_weights())
    histories = []
    for lib, model in ((keras, theirs), (dj, ours)):
        optimizer, loss, metrics = compile_args(lib)
        model.compile(optimizer, loss, metrics=metrics, steps_per_execution=steps_per_execution)
        data = (X[:samples], y[:samples])
        fitted = model.fit(*data, batch_size=16, epochs=epochs, shuffle=False, verbose=0, **fit)
        histories.append(fitted.history)
    return (theirs, histories[0]), (ours, histories[1])


def _assert_same(theirs, ours, histories):
    their_history, our_history = histories
    assert sorted(our_history) == sorted(their_history)
    for name in their_history:
        np.testing.assert_allclose(our_history[name], their_history[name], rtol=2e-5, atol=1e-6, err_msg=name)
    for mine, their in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, their, rtol=2e-5, atol=1e-6)


def _held_results(model):
    """What ``model.metrics`` hold, by log name (``compile_metrics`` gives a dict, as Keras's)."""
    results = {}
    for metric in model.metrics:
        value = metric.result()
        results.update(value if isinstance(value, dict) else {metric.name: value})
    return {name: float(value) for name, value in results.items()}


def _assert_same_held(theirs, ours):
    expected, got = _held_results(theirs), _held_results(ours)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=2e-5, err_msg=name)


def _adam_mse_mae(lib):
    return lib.optimizers.Adam(learning_rate=0.05), "mse", ["mae"]


@pytest.fixture(scope="module")
def guide_pair():
    fit = {"sample_weight": np.linspace(0.5, 1.5, 40), "validation_data": (X[:24], Y[:24])}
    fit["steps_per_execution"] = 2
    return _trained_pair(guide_model_class, _adam_mse_mae, Y, epochs=2, samples=40, fit=fit)


def test_the_guides_train_step_trains_as_keras(guide_pair):
    """Two epochs of 16 + 16 + 8 weighted samples, two steps per call, test_step validating: the short
    batch runs as it is, the metrics restart each epoch."""
    (theirs, their_history), (ours, our_history) = guide_pair
    assert sorted(our_history) == ["loss", "mae", "val_loss", "val_mae"] and len(our_history["loss"]) == 2
    _assert_same(theirs, ours, (their_history, our_history))
    _assert_same_held(theirs, ours)  # the metrics hold the last validation's state, as Keras syncs them


def test_the_guides_test_step_evaluates_as_keras(guide_pair):
    (theirs, _), (ours, _) = guide_pair
    expected = theirs.evaluate(X, Y, batch_size=16, return_dict=True, verbose=0)
    got = ours.evaluate(X, Y, batch_size=16, return_dict=True, verbose=0)
    assert sorted(got) == sorted(expected) == ["loss", "mae"]
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=2e-5, err_msg=name)
    _assert_same_held(theirs, ours)


def test_a_metrics_property_with_a_mean_tracker_trains_as_keras():
    compile_args = lambda lib: (lib.optimizers.SGD(learning_rate=0.1, momentum=0.9), None, None)
    (theirs, their_history), (ours, our_history) = _trained_pair(tracker_model_class, compile_args, Y)
    _assert_same(theirs, ours, (their_history, our_history))
    assert [m.name for m in ours.metrics] == ["loss", "mae", "samples"]
    _assert_same_held(theirs, ours)  # the epoch's training state


def test_compute_loss_and_compiled_metrics_as_keras():
    def compile_args(lib):
        accuracy = lib.metrics.SparseCategoricalAccuracy()
        return lib.optimizers.Adam(learning_rate=0.05), lib.losses.SparseCategoricalCrossentropy(), [accuracy]

    build = {"units": 3, "activation": "softmax", "normalize": False}
    pairs = _trained_pair(classifier_class, compile_args, LABELS, **build)
    (theirs, their_history), (ours, our_history) = pairs
    assert sorted(our_history) == ["loss", "sparse_categorical_accuracy"]
    _assert_same(theirs, ours, (their_history, our_history))
    assert [m.name for m in ours.metrics] == [m.name for m in theirs.metrics] == ["loss", "compile_metrics"]
    _assert_same_held(theirs, ours)


# ------------------------------------------------------------------ clear errors


def _model(klass, regularizer=None):
    inputs = dj.Input(shape=(4,))
    return klass(inputs, dj.layers.Dense(1, kernel_regularizer=regularizer)(inputs))


def test_a_step_that_returns_state_then_logs_says_the_form():
    class Swapped(dj.Model):
        def train_step(self, state, data):
            return state, {}

    model = _model(Swapped)
    model.compile("sgd", "mse")
    with pytest.raises(TypeError, match=r"Swapped.train_step must return \(logs, state\) with logs a dict"):
        model.fit(X, Y, verbose=0)


def test_a_step_that_drops_variables_says_which_list():
    class Dropping(dj.Model):
        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            return {}, (trainable[:1], non_trainable, optimizer_vars, metrics_vars)

    model = _model(Dropping)
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"Dropping.train_step returned 1 trainable_variables, given 2"):
        model.fit(X, Y, verbose=0)


def test_compute_loss_in_a_step_of_a_regularized_model_points_to_stateless_compute_loss():
    model = _model(classifier_class(dj), regularizer="l2")
    model.compile("sgd", "mse")
    with pytest.raises(NotImplementedError, match=r"weight regularizers.*self\.stateless_compute_loss\("):
        model.fit(X, Y, verbose=0)


def test_compute_loss_refuses_losses_of_the_forward_pass_naming_them():
    inputs = dj.Input(shape=(4,))
    model = classifier_class(dj)(inputs, dj.layers.Dense(1, activity_regularizer="l2", name="coded")(inputs))
    model.compile("sgd", "mse")
    with pytest.raises(NotImplementedError, match=r"activity regularizers \(coded\).*stateless_call"):
        model.fit(X, Y, verbose=0)


def test_overrides_that_fit_would_not_call_are_refused():
    class OwnLoss(dj.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return 0.0

    with pytest.raises(NotImplementedError, match=r"OwnLoss defines compute_loss.*Define both train_step"):
        _model(OwnLoss).compile("sgd", "mse")
