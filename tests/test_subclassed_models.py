"""Subclassed models (layers in ``__init__``, a ``call``) and a model's own pure ``train_step``.

The Keras parity tests define the model once, for a module ``k`` that is either
``keras`` or ``dagjax``: only the import differs, as for a user porting code.
"""

import keras
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import population
from dagjax.layers._keras_scope import UntraceableCallError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 4)).astype("float32")
Y = RNG.normal(size=(8, 2)).astype("float32")


def residual_model(k):
    """A subclassed model as a keras.io guide writes one: a residual block, BatchNorm, an added loss."""

    class Residual(k.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = k.layers.Dense(4, activation="tanh")
            self.norm = k.layers.BatchNormalization()
            self.head = k.layers.Dense(2)

        def call(self, inputs, training=False):
            h = self.norm(self.hidden(inputs), training=training) + inputs
            self.add_loss(0.1 * k.ops.mean(k.ops.square(h)))
            return self.head(h)

    return Residual()


def test_a_subclassed_model_trains_as_keras_does_from_the_same_weights():
    ours, theirs = residual_model(dj), residual_model(keras)
    for model in (ours, theirs):
        model.compile(optimizer=keras.optimizers.SGD(0.1) if model is theirs else optax.sgd(0.1), loss="mse")
    theirs(X[:1])  # built by a first call, in both
    ours(X[:1])
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours.predict(X, verbose=0), theirs.predict(X, verbose=0), rtol=1e-5, atol=1e-6)
    expected = theirs.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    got = ours.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    for mine, keras_weight in zip(ours.get_weights(), theirs.get_weights()):  # moving stats included
        np.testing.assert_allclose(mine, keras_weight, rtol=1e-5, atol=1e-6)
    # Keras prefixes a subclassed model's paths with its name; dagjax's are those of its traced graph
    parts = ("hidden", "norm", "head")
    renamed = {f"{theirs.name}/{getattr(theirs, a).name}/": f"{getattr(ours, a).name}/" for a in parts}
    keras_paths = [next(ours_prefix + w.path[len(prefix):] for prefix, ours_prefix in renamed.items()
                        if w.path.startswith(prefix)) for w in theirs.weights]
    assert [w.path for w in ours.weights] == keras_paths


def test_a_subclassed_model_builds_on_first_data_and_saves_as_its_graph(tmp_path):
    class TwoHeads(dj.Model):
        def __init__(self):
            super().__init__()
            self.embed = dj.layers.Embedding(10, 3)
            self.pool = dj.layers.GlobalAveragePooling1D()
            self.a, self.b = dj.layers.Dense(1, name="a"), dj.layers.Dense(3, name="b")

        def call(self, inputs):
            h = dj.ops.concatenate([self.pool(self.embed(inputs["tokens"])), inputs["extra"]], axis=-1)
            return {"a": self.a(h), "b": self.b(h)}

    model = TwoHeads()
    model.compile("adam", {"a": "mse", "b": "sparse_categorical_crossentropy"})  # before any shape is known
    x = {"tokens": RNG.integers(0, 10, (6, 5)), "extra": X[:6, :2]}
    model.fit(x, {"a": Y[:6, :1], "b": RNG.integers(0, 3, 6)}, epochs=1, verbose=0)
    assert model.input_names == ["extra", "tokens"] and model.output_names == ["a", "b"]
    assert model.inputs[1].dtype == np.int32  # integer data makes an integer Input, as Keras feeds ids
    expected = model(x)
    model.save(tmp_path / "m.dj")
    loaded = dj.load_model(tmp_path / "m.dj")  # no custom_objects: the file holds the traced graph
    assert type(loaded) is dj.Model
    np.testing.assert_allclose(loaded(x)["b"], expected["b"], rtol=1e-6)

    inner = residual_model(dj)  # unbuilt, nested in a functional graph: built from the symbolic input
    inputs = dj.Input((4,))
    outer = dj.Model(inputs, dj.layers.Dense(1)(inner(inputs)))
    assert outer(X).shape == (8, 1) and inner.built


def test_what_cannot_be_traced_says_why_and_what_to_write():
    class BranchesOnTraining(dj.Model):
        def __init__(self):
            super().__init__()
            self.dense = dj.layers.Dense(2)

        def call(self, x, training=False):
            return self.dense(x) if training else x

    class BranchesOnData(BranchesOnTraining):
        def call(self, x, training=False):
            return self.dense(x) if dj.ops.sum(x) > 0 else x

    with pytest.raises(UntraceableCallError, match="branches on `training`.*training=training"):
        BranchesOnTraining().predict(X, verbose=0)
    with pytest.raises(UntraceableCallError, match="could not be traced.*has no truth value.*dj.ops.where"):
        BranchesOnData()(X)
    with pytest.raises(TypeError, match="for a subclassed model, define call"):
        dj.Model()


def test_a_fixed_training_argument_is_kept_in_the_graph_and_its_file():
    inputs = dj.Input((4,))
    norm = dj.layers.BatchNormalization()
    model = dj.Model(inputs, dj.layers.Dense(1)(norm(inputs, training=False)))  # frozen statistics
    model.compile("sgd", "mse")
    model.fit(X, Y[:, :1], epochs=1, verbose=0)
    assert np.all(model.state[norm.name]["moving_mean"] == 0)  # inference mode even inside fit
    clone = dj.Model.from_config(model.get_config())
    assert clone.nodes[-2].kwargs == {"training": False}
    with pytest.raises(NotImplementedError, match="random numbers in inference"):
        dj.layers.Dropout(0.5)(inputs, training=True)


class Clipped(dj.Model):
    """A custom pure step: the default one with gradients clipped at ``limit``, and one log more."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.hidden, self.head = dj.layers.Dense(3, activation="relu"), dj.layers.Dense(2)

    def call(self, x):
        return self.head(self.hidden(x))

    def train_step(self, train_state, batch, rng):
        import jax
        import jax.numpy as jnp

        trainer = self.trainer
        grad_fn = jax.value_and_grad(trainer.batch_loss, has_aux=True)
        (loss, aux), grads = grad_fn(train_state.params, train_state.state, batch, rng)
        grads = jax.tree.map(lambda g: jnp.clip(g, -self.limit, self.limit), grads)
        updates, opt_state = trainer.optimizer.update(grads, train_state.opt_state, train_state.params)
        new = train_state._replace(
            params=optax.apply_updates(train_state.params, updates), state=aux.state, opt_state=opt_state,
            step=train_state.step + 1, metrics=trainer.count_batch(train_state.metrics, loss, aux, batch),
        )
        largest = jnp.max(jnp.stack([jnp.max(jnp.abs(g)) for g in jax.tree.leaves(grads)]))
        return new, {**trainer.metric_results(new), "largest_gradient": largest}


def test_a_pure_train_step_is_compiled_in_place_of_the_default():
    clipped, loose = Clipped(1e-3), Clipped(1e9)
    loose.build((None, 4))
    plain = dj.Model.from_config(loose.get_config())  # the same graph, trained by the default step
    for model in (clipped, loose, plain):
        model.compile(optax.sgd(0.1), "mse", metrics=["mae"], seed=1)
        model.build((None, 4))
    loose.set_weights(clipped.get_weights())
    plain.set_weights(clipped.get_weights())
    logs = clipped.fit(X, Y, batch_size=4, epochs=2, verbose=0).history
    assert sorted(logs) == ["largest_gradient", "loss", "mae"]
    np.testing.assert_allclose(logs["largest_gradient"], 1e-3, rtol=1e-6)  # clipped, and logged as returned
    loose.fit(X, Y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    plain.fit(X, Y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    for mine, default in zip(loose.get_weights(), plain.get_weights()):  # unclipped: the default step exactly
        np.testing.assert_allclose(mine, default, rtol=1e-6)
    assert sorted(loose.evaluate(X, Y, verbose=0, return_dict=True)) == ["loss", "mae"]  # default eval


def test_keras_stateful_steps_are_refused_with_the_forms_fit_runs():
    class KerasStep(dj.Model):
        def __init__(self):
            super().__init__()
            self.dense = dj.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def test_step(self, data):
            return {}

    forms = r"test_step\(self, data\) is Keras's stateful form.*test_step\(self, state, data\) -> \(logs"
    with pytest.raises(NotImplementedError, match=forms):
        KerasStep().compile("adam", "mse")


def test_a_subclassed_model_trains_with_a_keras_jax_train_step():
    class KerasStep(dj.Model):
        def __init__(self):
            super().__init__()
            self.dense = dj.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def train_step(self, state, data):
            trainable, non_trainable, optimizer_variables, metrics_variables = state
            trainable = [v + 1.0 for v in trainable]
            return {"steps": 1.0}, (trainable, non_trainable, optimizer_variables, metrics_variables)

    model = KerasStep()
    model.build((None, 2))
    before = model.get_weights()
    model.compile("adam", "mse")
    history = model.fit(np.ones((6, 2), "f4"), np.ones((6, 1), "f4"), batch_size=4, verbose=0)
    assert history.history == {"steps": [1.0]}
    for after, start in zip(model.get_weights(), before):  # two steps (4 + 2 samples), each adding 1
        np.testing.assert_allclose(after, start + 2.0)


def test_a_population_refuses_a_model_with_its_own_step():
    model = Clipped(1.0)
    model.build((None, 4))
    with pytest.raises(NotImplementedError, match="defines its own train_step or test_step; a population"):
        population.Population(model, "mse", optax.sgd(0.1), size=2)
