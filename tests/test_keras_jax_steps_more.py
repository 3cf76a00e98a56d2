"""More of Keras's JAX-backend step methods, each against Keras 3 from the same weights.

``predict_step(self, state, data) -> (outputs, non_trainable_variables)`` run by ``predict`` and
``predict_on_batch``: its batches unpadded (a short last batch as it is), the non-trainable values
it returns kept in the model, as Keras keeps them.
"""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj

RNG = np.random.RandomState(0)
X = RNG.rand(7, 4).astype("f4")


def batch_statistics_predictor(lib):
    """A ``predict_step`` whose outputs and returned state depend on the whole batch: BatchNormalization
    in training mode (the batch's statistics, moving averages updated) and the batch's mean taken off."""

    class Predictor(lib.Model):
        def predict_step(self, state, data):
            trainable, non_trainable = state
            outputs, non_trainable = self.stateless_call(trainable, non_trainable, data, training=True)
            return outputs - lib.ops.mean(outputs, axis=0), non_trainable

    return Predictor


def _pair(make_class):
    dj.clear_session()
    keras.utils.clear_session()
    models = []
    for lib in (keras, dj):
        inputs = lib.Input(shape=(4,))
        x = lib.layers.BatchNormalization()(lib.layers.Dense(3)(inputs))
        models.append(make_class(lib)(inputs, lib.layers.Dense(2)(x)))
    theirs, ours = models
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def _assert_same_weights(theirs, ours):
    for mine, their in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, their, rtol=1e-5, atol=1e-6)


def test_a_keras_predict_step_predicts_as_keras():
    """Batches of 3, 3 and 1 rows: a padded last batch would change its mean and statistics."""
    theirs, ours = _pair(batch_statistics_predictor)
    expected = theirs.predict(X, batch_size=3, verbose=0)
    got = ours.predict(X, batch_size=3, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    _assert_same_weights(theirs, ours)  # the moving statistics the step returned, kept
    np.testing.assert_allclose(ours.predict_on_batch(X[:5]), theirs.predict_on_batch(X[:5]), atol=1e-6)
    _assert_same_weights(theirs, ours)


def test_the_stateful_predict_step_is_refused_naming_the_jax_form():
    class Stateful(dj.Model):
        def predict_step(self, data):
            return self(data)

    inputs = dj.Input(shape=(4,))
    model = Stateful(inputs, dj.layers.Dense(1)(inputs))
    with pytest.raises(NotImplementedError, match=r"form, predict_step\(self, state, data\) -> \(outputs"):
        model.predict(X, verbose=0)


def test_a_predict_step_returning_only_outputs_says_the_form():
    class OutputsOnly(dj.Model):
        def predict_step(self, state, data):
            return self.stateless_call(*state, data)[0]

    inputs = dj.Input(shape=(4,))
    model = OutputsOnly(inputs, dj.layers.Dense(1)(inputs))
    with pytest.raises(TypeError, match=r"OutputsOnly.predict_step must return \(outputs, non_trainable_var"):
        model.predict(X, verbose=0)


# ------------------------------------------------------------------ per-output loss trackers

Y2 = [RNG.rand(7, 1).astype("f4"), RNG.rand(7, 2).astype("f4")]


def two_output_model_class(lib):
    """A step over ``stateless_compute_loss``, which counts each output's loss in its ``<output>_loss``
    tracker; the loop over ``self.metrics`` counts the loss and compile's metrics and reads the trackers."""

    class TwoOutputs(lib.Model):
        def losses_and_outputs(self, trainable, non_trainable, metrics_vars, x, y, sw, training):
            y_pred, non_trainable = self.stateless_call(trainable, non_trainable, x, training=training)
            loss, (_, non_trainable, metrics_vars) = self.stateless_compute_loss(
                trainable, non_trainable, metrics_vars, x=x, y=y, y_pred=y_pred, sample_weight=sw
            )
            return loss, (y_pred, non_trainable, metrics_vars)

        def logs(self, metrics_vars, loss, y, y_pred, sw):
            new_vars, logs = [], {}
            for metric in self.metrics:
                own = metrics_vars[len(new_vars) : len(new_vars) + len(metric.variables)]
                if metric.name == "loss":
                    own = metric.stateless_update_state(own, loss)
                elif metric.name == "compile_metrics":
                    own = metric.stateless_update_state(own, y, y_pred, sample_weight=sw)
                logs[metric.name] = metric.stateless_result(own)
                new_vars += own
            return logs, new_vars

        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            x, y, sw = lib.utils.unpack_x_y_sample_weight(data)
            grad_fn = jax.value_and_grad(self.losses_and_outputs, has_aux=True)
            (loss, (y_pred, non_trainable, metrics_vars)), grads = grad_fn(
                trainable, non_trainable, metrics_vars, x, y, sw, True
            )
            trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
            logs, metrics_vars = self.logs(metrics_vars, loss, y, y_pred, sw)
            return logs, (trainable, non_trainable, optimizer_vars, metrics_vars)

        def test_step(self, state, data):
            trainable, non_trainable, metrics_vars = state
            x, y, sw = lib.utils.unpack_x_y_sample_weight(data)
            loss, (y_pred, non_trainable, metrics_vars) = self.losses_and_outputs(
                trainable, non_trainable, metrics_vars, x, y, sw, False
            )
            logs, metrics_vars = self.logs(metrics_vars, loss, y, y_pred, sw)
            return logs, (trainable, non_trainable, metrics_vars)

    return TwoOutputs


def _two_output_pair():
    dj.clear_session()
    keras.utils.clear_session()
    models = []
    for lib in (keras, dj):
        inputs = lib.Input(shape=(4,))
        hidden = lib.layers.Dense(3, activation="relu")(inputs)
        outputs = [lib.layers.Dense(1, name="a")(hidden), lib.layers.Dense(2, name="b")(hidden)]
        model = two_output_model_class(lib)(inputs, outputs)
        model.compile(lib.optimizers.SGD(0.1), ["mse", "mae"], loss_weights=[1.0, 0.5], metrics=[["mae"], []])
        models.append(model)
    theirs, ours = models
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def _held(model):
    held = {}
    for metric in model.metrics:
        value = metric.result()
        held.update(value if isinstance(value, dict) else {metric.name: value})
    return {name: float(value) for name, value in held.items()}


def test_per_output_loss_trackers_are_listed_and_counted_as_keras():
    """``model.metrics`` lists ``a_loss`` and ``b_loss`` after the loss tracker and ``compile_metrics``;
    ``stateless_compute_loss`` counts each output's unweighted, sample-weighted loss in them."""
    theirs, ours = _two_output_pair()
    weights = np.linspace(0.5, 1.5, 7)
    histories = [
        model.fit(X, Y2, batch_size=3, epochs=2, sample_weight=weights, shuffle=False, verbose=0).history
        for model in (theirs, ours)
    ]
    assert [m.name for m in ours.metrics] == [m.name for m in theirs.metrics]
    assert [m.name for m in ours.metrics] == ["loss", "compile_metrics", "a_loss", "b_loss"]
    assert sorted(histories[1]) == sorted(histories[0])
    assert "b_loss" in histories[1]
    for name, values in histories[0].items():
        np.testing.assert_allclose(histories[1][name], values, rtol=2e-5, atol=1e-6, err_msg=name)
    expected, got = _held(theirs), _held(ours)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=2e-5, err_msg=name)
    expected = theirs.evaluate(X, Y2, batch_size=3, return_dict=True, verbose=0)
    got = ours.evaluate(X, Y2, batch_size=3, return_dict=True, verbose=0)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=2e-5, err_msg=name)


# ------------------------------------------------------------------ loss scaling


def unscaled_step_class(lib):
    """The guide's step on a float16 model: its gradients are of the unscaled loss, and the
    ``LossScaleOptimizer`` compile wraps around the optimizer divides them by the scale in
    ``stateless_apply``, as Keras's does."""

    class Unscaled(lib.Model):
        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            x, y = data

            def loss_fn(trainable):
                y_pred, _ = self.stateless_call(trainable, non_trainable, x, training=True)
                return lib.ops.mean((lib.ops.cast(y_pred, "float32") - y) ** 2)

            grads = jax.grad(loss_fn)(trainable)
            trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
            return {}, (trainable, non_trainable, optimizer_vars, metrics_vars)

    return Unscaled


def test_stateless_apply_in_a_float16_models_step_unscales_as_keras():
    dj.clear_session()
    keras.utils.clear_session()
    models = []
    for lib in (keras, dj):
        lib.mixed_precision.set_global_policy("mixed_float16")
        try:
            inputs = lib.Input(shape=(4,))
            models.append(unscaled_step_class(lib)(inputs, lib.layers.Dense(1)(inputs)))
        finally:
            lib.mixed_precision.set_global_policy("float32")
    theirs, ours = models
    ours.set_weights(theirs.get_weights())
    start = [w.copy() for w in theirs.get_weights()]
    for lib, model in ((keras, theirs), (dj, ours)):
        model.compile(lib.optimizers.SGD(0.1), "mse")
        model.fit(X, Y2[0], batch_size=4, epochs=1, shuffle=False, verbose=0)
    for before, mine, their in zip(start, ours.get_weights(), theirs.get_weights()):
        # the updates are the gradients over 2**15: without the unscaling they would be that much larger
        np.testing.assert_allclose(mine - before, their - before, rtol=2e-3, atol=1e-9)
        assert 0 < np.abs(their - before).max() < 1e-3


# ------------------------------------------------------------------ losses added in a layer's call


def penalized_model(lib, step_class):
    class Penalty(lib.layers.Layer):
        def call(self, x):
            self.add_loss(0.1 * lib.ops.mean(lib.ops.square(x)))
            return x

    inputs = lib.Input(shape=(4,))
    hidden = Penalty()(lib.layers.Dense(3)(inputs))
    return step_class(lib)(inputs, lib.layers.Dense(1)(hidden))


def forward_losses_step_class(lib, return_losses=True):
    """A step adding the losses ``stateless_call(..., return_losses=True)`` returns to ``compute_loss``'s."""

    class WithForwardLosses(lib.Model):
        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            x, y = data

            def loss_fn(trainable):
                if not return_losses:
                    y_pred, _ = self.stateless_call(trainable, non_trainable, x, training=True)
                    return self.compute_loss(y=y, y_pred=y_pred)
                y_pred, _, losses = self.stateless_call(
                    trainable, non_trainable, x, training=True, return_losses=True
                )
                return self.compute_loss(y=y, y_pred=y_pred) + sum(losses)

            loss, grads = jax.value_and_grad(loss_fn)(trainable)
            trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
            return {"total": loss}, (trainable, non_trainable, optimizer_vars, metrics_vars)

    return WithForwardLosses


def test_losses_a_layers_call_adds_come_back_with_return_losses_as_keras():
    dj.clear_session()
    keras.utils.clear_session()
    theirs, ours = (penalized_model(lib, forward_losses_step_class) for lib in (keras, dj))
    ours.set_weights(theirs.get_weights())
    histories = []
    for lib, model in ((keras, theirs), (dj, ours)):
        model.compile(lib.optimizers.SGD(0.1), "mse")
        histories.append(model.fit(X, Y2[0], batch_size=4, epochs=2, shuffle=False, verbose=0).history)
    np.testing.assert_allclose(histories[1]["total"], histories[0]["total"], rtol=2e-5)
    _assert_same_weights(theirs, ours)


def test_compute_loss_refuses_a_step_that_dropped_the_losses_a_layers_call_adds():
    model = penalized_model(dj, lambda lib: forward_losses_step_class(lib, return_losses=False))
    model.compile("sgd", "mse")
    with pytest.raises(NotImplementedError, match=r"its layers' call adds \(add_loss\).*return_losses=True"):
        model.fit(X, Y2[0], verbose=0)
