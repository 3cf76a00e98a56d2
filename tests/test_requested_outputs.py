"""``model.apply(..., outputs=...)`` computes only what the requested outputs need."""

import jax
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers


@pytest.fixture(scope="module")
def model():
    dj.clear_session()
    text = dj.Input(shape=(6, 2), name="text")
    meta = dj.Input(shape=(3,), name="meta")
    t = layers.GlobalMaxPooling1D()(layers.Conv1D(4, 3, name="conv")(text))
    h = layers.concatenate([t, layers.Dense(4, name="meta_dense")(meta)])
    age = layers.Dense(1, name="age")(h)
    income = layers.Dense(3, activation="softmax", name="income")(h)
    only_meta = layers.Dense(2, name="from_meta")(meta)
    return dj.Model([text, meta], [age, income, only_meta])


X = [np.random.default_rng(0).normal(size=(2, 6, 2)).astype("float32"), np.ones((2, 3), "float32")]


def _layers_traced(model, **kwargs):
    jaxpr = jax.make_jaxpr(lambda p: model.apply(p, model.state, X, **kwargs)[0])(model.params)
    return len(jaxpr.jaxpr.eqns)


def test_one_head_equals_the_full_models_and_computes_less(model):
    def every_way(params):
        apply = lambda **kwargs: model.apply(params, model.state, X, **kwargs)[0]
        return apply(), apply(outputs="income"), apply(outputs=["from_meta", "age"])

    (age, income, only_meta), got, pair = jax.jit(every_way)(model.params)
    np.testing.assert_allclose(got, income)
    np.testing.assert_allclose(pair[0], only_meta)
    np.testing.assert_allclose(pair[1], age)
    full = _layers_traced(model)
    assert _layers_traced(model, outputs=["income"]) < full
    meta_only = jax.make_jaxpr(lambda p: model.apply(p, model.state, X, outputs="from_meta")[0])(model.params)
    assert "conv_general_dilated" not in str(meta_only)  # the text branch is not traced at all


def test_an_unknown_output_is_named(model):
    expected = r"has no \['height'\].*outputs are \['age', 'income', 'from_meta'\]"
    with pytest.raises(ValueError, match=expected):
        model.apply(model.params, model.state, X, outputs=["height"])
