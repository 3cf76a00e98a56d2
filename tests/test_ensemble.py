"""dj.ensemble: averaging models into one Model, fitting its weights, and refusing models that do not fit."""

import re

import jax
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.layers import LayerInputError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4)).astype("float32")
RULE = RNG.normal(size=(4, 3)).astype("float32")
Y = np.argmax(X @ RULE, axis=1)  # three classes a linear softmax can learn exactly


def seeded(model, seed):
    """``model`` with weights from ``seed`` (each member its own)."""
    model.restore_weights(*model.init(jax.random.key(seed)))
    return model


def mlp(name, seed=0, units=3, input_name="x"):
    x = dj.Input((4,), name=input_name)
    h = layers.Dense(8, activation="relu")(x)
    return seeded(dj.Model(x, layers.Dense(units, activation="softmax", name="probs")(h), name=name), seed)


def linear(name, kernel):
    """A softmax regression with the given kernel (no bias to learn)."""
    x = dj.Input((4,), name="x")
    model = dj.Model(x, layers.Dense(3, activation="softmax", use_bias=False, name="probs")(x), name=name)
    model.set_weights([kernel])
    return model


def predict(model, x):
    return model.predict(x, verbose=0)


def crossentropy(y, probs):
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


# ------------------------------------------------------------------ average
def test_average_is_the_weighted_mean_of_the_members_predictions():
    a, b = mlp("a", 0), mlp("b", 1)
    ensemble = dj.ensemble.average([a, b], weights=[3, 1])
    expected = 0.75 * predict(a, X) + 0.25 * predict(b, X)
    np.testing.assert_allclose(predict(ensemble, X), expected, rtol=1e-6, atol=1e-7)
    assert ensemble.input_names == ["x"] and ensemble.output_names == ["probs"]


def test_weights_are_uniform_by_default_and_inputs_pair_by_position_when_names_differ():
    stack = [dj.Input((4,)), layers.BatchNormalization(), layers.Dense(3, activation="softmax")]
    sequential = dj.Sequential(stack, name="seq")
    sequential.state = jax.tree.map(lambda v: v + 0.5, sequential.state)  # moving statistics that matter
    members = [mlp("a", 0), mlp("b", 1), sequential]
    ensemble = dj.ensemble.average(members)
    expected = sum(predict(m, X) for m in members) / 3
    np.testing.assert_allclose(predict(ensemble, X), expected, rtol=1e-6, atol=1e-7)
    assert ensemble.get_layer("probs").coefficients == pytest.approx((1 / 3,) * 3)
    assert list(ensemble.state) == ["seq"]


def dict_model(name, seed, order=("left", "right")):
    """Two inputs (given in ``order``) and a dict of two outputs."""
    inputs = {n: dj.Input((4,), name=n) for n in order}
    left, right = inputs["left"], inputs["right"]
    h = layers.Dense(6, activation="tanh")(layers.concatenate([left, layers.Dense(4)(right)]))
    outputs = {"digit": layers.Dense(3, activation="softmax")(h), "size": layers.Dense(1)(h)}
    return seeded(dj.Model([inputs[n] for n in order], outputs, name=name), seed)


def test_multi_input_multi_output_members_average_output_by_output_and_pair_inputs_by_name():
    a, b = dict_model("a", 0), dict_model("b", 1, order=("right", "left"))
    x = {"left": X, "right": X[::-1].copy()}
    ensemble = dj.ensemble.average([a, b], weights=[0.2, 0.8])
    out, pa, pb = predict(ensemble, x), predict(a, x), predict(b, x)
    assert sorted(out) == ["digit", "size"] and ensemble.output_names == ["digit", "size"]
    for key in out:
        np.testing.assert_allclose(out[key], 0.2 * pa[key] + 0.8 * pb[key], rtol=1e-6, atol=1e-6)


def test_the_ensemble_params_are_the_members_params():
    a, b = mlp("a", 0), mlp("b", 1)
    ensemble = dj.ensemble.average([a, b])
    assert sorted(ensemble.params) == ["a", "b"]
    for member in (a, b):
        assert ensemble.get_layer(member.name) is member
        jax.tree.map(np.testing.assert_array_equal, ensemble.params[member.name], member.params)


def test_training_a_member_or_the_ensemble_afterwards_leaves_the_other_as_it_was():
    """They share arrays, and a fit copies shared ones before its steps update (donate) buffers."""
    a, b = mlp("a", 0), mlp("b", 1)
    ensemble = dj.ensemble.average([a, b])
    before = predict(ensemble, X)
    a.compile("sgd", "sparse_categorical_crossentropy")
    a.fit(X, Y, epochs=1, verbose=0)
    np.testing.assert_array_equal(predict(ensemble, X), before)
    b_before = predict(b, X)
    ensemble.compile("sgd", "sparse_categorical_crossentropy")
    ensemble.fit(X, Y, epochs=1, verbose=0)
    np.testing.assert_array_equal(predict(b, X), b_before)
    assert not np.array_equal(predict(ensemble, X), before)


def test_save_and_load_model_give_back_the_same_predictions(tmp_path):
    ensemble = dj.ensemble.average([mlp("a", 0), mlp("b", 1), mlp("c", 2)], weights=[1, 2, 1])
    ensemble.save(tmp_path / "ensemble.dj")
    loaded = dj.load_model(tmp_path / "ensemble.dj")
    np.testing.assert_array_equal(predict(loaded, X), predict(ensemble, X))
    assert loaded.get_layer("probs").coefficients == (0.25, 0.5, 0.25)
    assert isinstance(loaded.get_layer("probs"), dj.ensemble.WeightedAverage)


def test_evaluate_after_compile_scores_the_averaged_predictions():
    ensemble = dj.ensemble.average([mlp("a", 0), mlp("b", 1)], weights=[1, 3])
    ensemble.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = ensemble.evaluate(X, Y, verbose=0, return_dict=True)
    probs = predict(ensemble, X)
    assert logs["loss"] == pytest.approx(crossentropy(Y, probs), rel=1e-5)
    assert logs["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == Y))


def test_an_output_named_like_a_member_gets_its_own_name():
    ensemble = dj.ensemble.average([mlp("probs", 0), mlp("b", 1)])
    assert ensemble.output_names == ["probs_average"]


# ------------------------------------------------------------------ fit_weights
def test_fit_weights_favours_the_good_member_and_beats_uniform_weights():
    good, poor = linear("good", 4.0 * RULE), linear("poor", np.zeros((4, 3), "float32"))
    weights = dj.ensemble.fit_weights([poor, good], X, Y, "sparse_categorical_crossentropy", steps=100)
    assert len(weights) == 2 and all(w >= 0 for w in weights) and sum(weights) == pytest.approx(1.0)
    assert weights[1] > 0.9
    fitted = crossentropy(Y, predict(dj.ensemble.average([poor, good], weights), X))
    uniform = crossentropy(Y, predict(dj.ensemble.average([poor, good]), X))
    assert fitted < uniform
    again = dj.ensemble.fit_weights([poor, good], X, Y, "sparse_categorical_crossentropy", steps=100)
    assert again == weights  # deterministic


def test_fit_weights_keeps_the_best_weights_seen():
    """One huge Adam step jumps to a corner, worse than the uniform start: the start is what comes back."""
    noise = np.random.default_rng(1).normal(size=(2, 4, 3)).astype("float32")
    a, b = linear("a", RULE + noise[0]), linear("b", RULE + noise[1])
    loss = "sparse_categorical_crossentropy"
    assert dj.ensemble.fit_weights([a, b], X, Y, loss, steps=1, learning_rate=50) == [0.5, 0.5]


def test_fit_weights_reads_a_loss_per_output():
    """Only the output with a loss counts: the member good at 'digit' wins, however poor its 'size'."""
    x = {"left": X, "right": X}
    a, b = dict_model("a", 0), dict_model("b", 1)
    y = {"digit": np.argmax(predict(b, x)["digit"], axis=1), "size": np.zeros((len(X), 1), "float32")}
    weights = dj.ensemble.fit_weights([a, b], x, y, {"digit": "sparse_categorical_crossentropy"}, steps=100)
    assert weights[1] > weights[0]


# ------------------------------------------------------------------ errors, in the user's words
def other_input_shape(name):
    x = dj.Input((5,), name="pixels")
    return dj.Model(x, layers.Dense(3, activation="softmax")(x), name=name)


def dict_output(name):
    x = dj.Input((4,), name="x")
    return dj.Model(x, {"probs": layers.Dense(3, activation="softmax")(x)}, name=name)


@pytest.mark.parametrize(
    ("models", "error", "message"),
    [
        (lambda: [], ValueError, "dj.ensemble.average got an empty list of models"),
        (lambda: mlp("a"), TypeError, "takes a list of models"),
        (lambda: [mlp("a"), layers.Dense(3)], TypeError, "models[1] is a Dense"),
        (lambda: [mlp("a"), dj.Sequential(name="seq")], ValueError, "model 'seq' (models[1]) has no input"),
        (lambda: [mlp("a"), mlp("a")], ValueError, "models[0] and models[1] are different models both named"),
        (
            lambda: [mlp("a"), other_input_shape("b")],
            ValueError,
            "input 'pixels' of model 'b' is (None, 5) float32, but input 'x' of model 'a' is (None, 4) "
            "float32",
        ),
        (
            lambda: [mlp("a"), dict_model("b", 0)],
            ValueError,
            "model 'a' takes 1, ['x'] of shapes [(None, 4)]; model 'b' takes 2, ['left', 'right'] of shapes",
        ),
        (
            lambda: [mlp("a"), mlp("b", units=5)],
            ValueError,
            "output 'probs' of model 'b' is (None, 5) float32, but output 'probs' of model 'a' is "
            "(None, 3) float32",
        ),
        (
            lambda: [mlp("a"), dict_output("b")],
            ValueError,
            "model 'a' returns one output, model 'b' returns a dict of outputs ['probs']",
        ),
    ],
)
def test_members_that_cannot_be_averaged_are_refused_naming_both(models, error, message):
    with pytest.raises(error, match=re.escape(message)):
        dj.ensemble.average(models())


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0], "got 1 weights for 2 models; give one weight per model"),
        ([1.0, -0.5], "Ensemble weights must be finite and non-negative, got [1.0, -0.5]"),
        ([0, 0], "Ensemble weights are all zero, [0.0, 0.0]; make at least one positive"),
        ([1.0, float("nan")], "must be finite and non-negative"),
        (0.5, "Ensemble weights must be a list of numbers, got 0.5"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        dj.ensemble.average([mlp("a", 0), mlp("b", 1)], weights)


def test_fit_weights_checks_its_members_and_data():
    a, b = mlp("a", 0), mlp("b", 1)
    with pytest.raises(ValueError, match=re.escape("dj.ensemble.fit_weights got an empty list of models")):
        dj.ensemble.fit_weights([], X, Y, "mse")
    rows = "y_val for output 'probs' has 39 rows but model 'a' predicted 40 from x_val"
    with pytest.raises(ValueError, match=re.escape(rows)):
        dj.ensemble.fit_weights([a, b], X, Y[:-1], "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="steps must be a non-negative int"):
        dj.ensemble.fit_weights([a, b], X, Y, "sparse_categorical_crossentropy", steps=-1)


def test_the_averaging_layer_checks_what_it_is_given():
    a, b = dj.Input((3,)), dj.Input((4,))
    with pytest.raises(LayerInputError, match=re.escape("has 3 coefficients but got 2 tensors")):
        dj.ensemble.WeightedAverage([1, 1, 1])([a, a])
    shapes = "averages tensors of one shape, got [(None, 3), (None, 4)]"
    with pytest.raises(LayerInputError, match=re.escape(shapes)):
        dj.ensemble.WeightedAverage([1, 1])([a, b])
