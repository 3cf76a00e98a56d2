"""Training models whose outputs nest lists, against Keras 3 from the same weights.

Keras takes targets, losses, loss weights, metrics and sample weights nested as the outputs are
(``y=[[ya, yb], yc]`` for outputs ``[[a, b], c]``; keras/src/trainers/compile_utils.py flattens them
along the outputs' structure) and names a nested output's loss by its path (``0/a_loss``).
"""

import jax
import keras
import numpy as np
import optax
import pytest

import dagjax as dj

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 3)).astype("float32")
YA, YB, YC = (RNG.normal(size=(4, n)).astype("float32") for n in (2, 1, 1))
WEIGHTS = RNG.uniform(0.5, 1.5, size=(3, 4)).astype("float32")


def list_nested_model(lib):
    """One input, outputs nested as ``[[a, b], c]``."""
    x = lib.Input((3,), name="x")
    h = lib.layers.Dense(4, activation="tanh", name="h")(x)
    heads = [lib.layers.Dense(n, name=name)(h) for n, name in ((2, "a"), (1, "b"), (1, "c"))]
    return lib.Model(x, [[heads[0], heads[1]], heads[2]])


def fit_both(build, compile_kwargs, fit_kwargs):
    """One epoch of SGD from the same weights, on ``X`` unless ``fit_kwargs`` give ``x``."""
    theirs = build(keras)
    ours = build(dj)
    ours.set_weights(theirs.get_weights())
    theirs.compile(keras.optimizers.SGD(0.1), **compile_kwargs)
    ours.compile(dj.optimizers.SGD(0.1), **compile_kwargs)
    options = {"x": X, "epochs": 1, "batch_size": 2, "shuffle": False, "verbose": 0}
    expected = theirs.fit(**{**options, **fit_kwargs}).history
    got = ours.fit(**{**options, **fit_kwargs}).history
    for g, e in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)
    return got, expected


def test_targets_losses_weights_and_sample_weights_nested_as_the_outputs_train_as_keras():
    w_a, w_b, w_c = WEIGHTS
    got, expected = fit_both(
        list_nested_model,
        {"loss": [["mse", "mae"], "mse"], "loss_weights": [[1.0, 0.5], 2.0]},
        {"y": [[YA, YB], YC], "sample_weight": [[w_a, w_b], w_c]},
    )
    assert sorted(got) == sorted(expected) == ["0/a_loss", "0/b_loss", "c_loss", "loss"]
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)


def test_a_flat_list_still_serves_nested_outputs_as_in_keras():
    got, expected = fit_both(
        list_nested_model, {"loss": ["mse", "mae", "mse"]}, {"y": [YA, YB, YC]},
    )
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)


def test_a_nest_that_does_not_match_the_outputs_names_both_structures():
    model = list_nested_model(dj)
    expected = r"nested as \[\['\*'\], '\*'\], not as the outputs \[\['\*', '\*'\], '\*'\]"
    with pytest.raises(ValueError, match=expected):
        model.compile("sgd", loss=[["mse"], "mse"])
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match=r"`y` is a list of 2 nested as .*'0/a', '0/b', 'c'"):
        model.fit(X, [[YA], YC], epochs=1, verbose=0)


def test_nested_outputs_log_metrics_by_output_layer_as_keras():
    """Keras names a nested output's loss by its path (``0/a_loss``) but its metrics by layer (``a_mae``)."""
    metrics = [[["mae"], ["mse"]], ["mae", "mse"]]
    got, expected = fit_both(list_nested_model, {"loss": "mse", "metrics": metrics}, {"y": [[YA, YB], YC]})
    assert sorted(got) == sorted(expected)
    assert {"a_mae", "b_mse", "c_mae", "c_mse", "0/a_loss"} <= set(got)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)


def test_nested_dict_outputs_log_metrics_by_output_layer_as_keras():
    def build(lib):
        x = lib.Input((3,), name="x")
        d1, d2, d3 = (lib.layers.Dense(n, name=f"d{i}")(x) for i, n in ((1, 1), (2, 2), (3, 1)))
        return lib.Model(x, {"1": d1, "others": {"2": d2, "3": d3}})

    y = {"1": YB, "others": {"2": YA, "3": YC}}
    metrics = {"1": ["mae"], "others": {"2": ["mae"], "3": ["mse"]}}
    got, expected = fit_both(build, {"loss": "mse", "metrics": metrics}, {"y": y})
    assert sorted(got) == sorted(expected)
    assert {"d1_mae", "d2_mae", "d3_mse", "others/2_loss"} <= set(got)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)


def test_one_layer_output_twice_in_a_nest_numbers_its_metric_logs_as_keras():
    def build(lib):
        x = lib.Input((3,), name="x")
        a = lib.layers.Dense(1, name="a")(x)
        return lib.Model(x, [[a, a], a])

    metrics = [[["mae"], ["mae"]], ["mae"]]
    got, expected = fit_both(build, {"loss": "mse", "metrics": metrics}, {"y": [[YB, YC], YB]})
    metric_logs = ["a_mae", "a_mae_1", "a_mae_2"]
    assert [k for k in got if k.startswith("a_mae")] == metric_logs
    assert [k for k in expected if k.startswith("a_mae")] == metric_logs
    for key in metric_logs:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)


def nested_input_model(lib, cls=None):
    """Inputs nested as ``[x1, {"b": x2}]``, outputs as ``[[a, b], c]``."""
    x1, x2 = lib.Input((1,), name="x1"), lib.Input((2,), name="x2")
    h = lib.layers.concatenate([x1, x2])
    heads = [lib.layers.Dense(n, name=name)(h) for n, name in ((2, "a"), (1, "b"), (1, "c"))]
    return (cls or lib.Model)([x1, {"b": x2}], [[heads[0], heads[1]], heads[2]])


NESTED_X = [X[:, :1], {"b": X[:, 1:]}]
NESTED_Y = [[YA, YB], YC]


def keras_form_step_class(lib, seen):
    """Keras's JAX-form ``train_step`` (the keras.io guide's), noting the structure of the data it gets."""

    class CustomModel(lib.Model):
        def train_step(self, state, data):
            seen.append(jax.tree_util.tree_structure(data))
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            x, y = data

            def loss_fn(trainable, metrics_vars):
                y_pred, _ = self.stateless_call(trainable, non_trainable, x, training=True)
                loss, (_, _, metrics_vars) = self.stateless_compute_loss(
                    trainable, non_trainable, metrics_vars, x=x, y=y, y_pred=y_pred, training=True
                )
                return loss, metrics_vars

            (loss, metrics_vars), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, metrics_vars)
            trainable, optimizer_vars = self.optimizer.stateless_apply(optimizer_vars, grads, trainable)
            return {"loss": loss}, (trainable, non_trainable, optimizer_vars, metrics_vars)

    return CustomModel


def test_a_keras_form_train_step_gets_the_data_nested_as_the_model_as_keras():
    seen = {keras: [], dj: []}
    got, expected = fit_both(
        lambda lib: nested_input_model(lib, keras_form_step_class(lib, seen[lib])),
        {"loss": "mse"}, {"x": NESTED_X, "y": NESTED_Y},
    )
    assert seen[dj][-1] == seen[keras][-1] == jax.tree_util.tree_structure((NESTED_X, NESTED_Y))
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-5)


def test_a_pure_train_step_gets_the_batch_nested_as_the_model():
    seen = []

    class PureStep(dj.Model):
        def train_step(self, train_state, batch, rng):
            seen.append(jax.tree_util.tree_structure(batch[:2]))
            trainer, ts = self.trainer, train_state
            grad_fn = jax.value_and_grad(trainer.batch_loss, has_aux=True)
            (loss, aux), grads = grad_fn(ts.params, ts.state, batch, rng)
            updates, opt_state = trainer.optimizer.update(grads, ts.opt_state, ts.params)
            params = optax.apply_updates(ts.params, updates)
            return ts._replace(params=params, state=aux.state, opt_state=opt_state), {"loss": loss}

    fit_both(lambda lib: nested_input_model(lib, PureStep if lib is dj else None),
             {"loss": "mse"}, {"x": NESTED_X, "y": NESTED_Y})
    assert seen[-1] == jax.tree_util.tree_structure((NESTED_X, NESTED_Y))


def masked_into_nested_inner_model(lib, mask_zero=True):
    """An Embedding's mask carried into an inner model whose inputs nest as ``[{"s": seq}, vec]``."""
    seq, vec = lib.Input((5, 4), name="seq"), lib.Input((3,), name="vec")
    read = [lib.layers.LSTM(2, name="lstm")(seq), lib.layers.Dense(2, name="dv")(vec)]
    merged = lib.layers.concatenate(read)
    inner = lib.Model([{"s": seq}, vec], merged, name="inner")
    tokens, outer_vec = lib.Input((5,), dtype="int32", name="tokens"), lib.Input((3,), name="outer_vec")
    embedded = lib.layers.Embedding(10, 4, mask_zero=mask_zero, name="emb")(tokens)
    return lib.Model([tokens, outer_vec], inner([{"s": embedded}, outer_vec]))


def test_a_mask_reaches_the_right_input_of_a_nested_input_inner_model_as_keras():
    tokens = np.array([[1, 2, 0, 0, 0], [3, 0, 0, 0, 0]], "int32")
    vec = RNG.normal(size=(2, 3)).astype("float32")
    theirs = masked_into_nested_inner_model(keras)
    unmasked = masked_into_nested_inner_model(keras, mask_zero=False)
    unmasked.set_weights(theirs.get_weights())
    expected = np.asarray(theirs([tokens, vec]))
    assert not np.allclose(expected, np.asarray(unmasked([tokens, vec])), atol=1e-4)  # the mask matters
    ours = masked_into_nested_inner_model(dj)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(np.asarray(ours([tokens, vec])), expected, rtol=1e-5, atol=1e-6)


def test_nested_targets_and_weights_from_a_generator_evaluate_and_train_on_batch_as_keras():
    w_a, w_b, w_c = WEIGHTS

    def batches():
        for rows in (slice(0, 2), slice(2, 4)):
            yield X[rows], [[YA[rows], YB[rows]], YC[rows]], [[w_a[rows], w_b[rows]], w_c[rows]]

    y, sample_weight = [[YA, YB], YC], [[w_a, w_b], w_c]
    results = {}
    for lib in (keras, dj):
        model = list_nested_model(lib)
        if lib is keras:
            initial = model.get_weights()
        model.set_weights(initial)
        model.compile(lib.optimizers.SGD(0.1), loss=[["mse", "mae"], "mse"])
        results[lib] = (
            model.fit(batches(), epochs=1, verbose=0).history,
            model.evaluate(X, y, sample_weight=sample_weight, verbose=0, return_dict=True),
            model.train_on_batch(X, y, sample_weight=sample_weight, return_dict=True),
        )
    for got, expected in zip(results[dj], results[keras]):
        assert sorted(got) == sorted(expected)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-5)
