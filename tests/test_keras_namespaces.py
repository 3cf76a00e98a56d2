"""Keras's helpers outside the layers, against Keras 3 itself: ``models.clone_model``,
``utils.to_categorical`` / ``set_random_seed`` / ``PyDataset`` and ``optimizers.schedules``."""

import random

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import layers
from dagjax._naming import DEFAULT_SEED, default_seed
from dagjax.optimizers import schedules

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 4)).astype("float32")
Y = RNG.normal(size=(32, 2)).astype("float32")


def _dag(lib):
    """The same DAG in Keras or dagjax: a shared Dense, BatchNormalization, Dropout and a merge."""
    x = lib.Input((4,), name="x")
    shared = lib.layers.Dense(4, activation="tanh", name="shared")
    a = shared(x)
    b = shared(lib.layers.Dense(4, name="pre")(x))
    h = lib.layers.BatchNormalization(name="bn")(lib.layers.Add(name="add")([a, b]))
    out = lib.layers.Dense(2, name="out")(lib.layers.Dropout(0.3, name="drop")(h))
    return lib.Model(x, out, name="dag")


# ------------------------------------------------------------------ clone_model
def test_clone_model_has_keras_clones_architecture_and_computes_the_same():
    ours, theirs = dj.models.clone_model(_dag(dj)), keras.models.clone_model(_dag(keras))
    assert ours.name == theirs.name == "dag"
    described = lambda model: [(type(layer).__name__, layer.name) for layer in model.layers]
    assert described(ours) == described(theirs)
    assert ours.count_params() == theirs.count_params()  # the shared layer is one layer in the clone too
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    np.testing.assert_allclose(ours.predict(X, verbose=0), theirs(X), rtol=1e-5, atol=1e-5)


def test_a_clone_has_fresh_weights_of_its_own_and_is_compiled_as_the_original():
    model = _dag(dj)
    model.compile(dj.optimizers.Adam(0.01), "mse", metrics=["mae"])
    model.fit(X, Y, epochs=1, verbose=0)
    trained = model.get_weights()
    clone = dj.models.clone_model(model)
    fresh = jax.tree.leaves(model.init())
    np.testing.assert_array_equal(jax.tree.leaves(clone.params)[0], fresh[0])  # new weights, not the trained
    assert not np.allclose(clone.get_weights()[0], trained[0])
    assert clone.compiled and int(clone.optimizer.iterations) == 0
    keras_model = _dag(keras)
    keras_model.compile("adam", "mse")
    assert keras.models.clone_model(keras_model).compiled  # as Keras's clone
    history = clone.fit(X, Y, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    for before, after in zip(trained, model.get_weights()):  # training the clone leaves the model alone
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("with_input", [True, False])
def test_clone_of_a_sequential_is_a_sequential_as_keras(with_input):
    def build(lib):
        head = [lib.Input((3,), name="inp")] if with_input else []
        stack = [lib.layers.Dense(2, name="d1"), lib.layers.ReLU(name="act")]
        return lib.Sequential(head + stack, name="seq")

    ours, theirs = dj.models.clone_model(build(dj)), keras.models.clone_model(build(keras))
    assert isinstance(ours, dj.Sequential) and ours.name == theirs.name
    assert [layer.name for layer in ours.layers] == [layer.name for layer in theirs.layers]
    assert (ours.input_shape if with_input else None) == (theirs.input_shape if with_input else None)
    if not with_input:  # builds on its first data, as Keras's
        assert ours.predict(X[:, :3], verbose=0).shape == (32, 2)


def double(x):
    return 2.0 * x


def scaled_tanh(x):
    return 1.5 * jnp.tanh(x)


class Offset(layers.Layer):  # a custom layer that no registry knows
    def __init__(self, offset=1.0, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset

    def call(self, params, x):
        return x + self.offset

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


def test_clone_keeps_the_functions_and_classes_the_layers_hold_without_registering_them():
    x = dj.Input((4,))
    inner_in = dj.Input((4,))
    inner = dj.Model(inner_in, layers.Dense(3, activation=scaled_tanh)(inner_in), name="inner")
    h = Offset(2.0)(layers.Lambda(double)(x))
    model = dj.Model(x, layers.TimeDistributed(layers.Dense(1))(layers.Reshape((3, 1))(inner(h))))
    clone = dj.models.clone_model(model)
    assert clone.get_layer("inner") is not inner and isinstance(clone.layers[2], Offset)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(X, verbose=0), model.predict(X, verbose=0), rtol=1e-6)


def test_clone_function_call_function_and_input_tensors():
    model = _dag(dj)
    seen = []

    def clone_function(layer):
        seen.append(layer.name)
        return dj.models.clone_model(layer) if isinstance(layer, dj.Model) else type(layer).from_config(
            {**layer.get_config(), **({"activation": "relu"} if layer.name == "shared" else {})}
        )

    new_input = dj.Input((4,), name="fresh")
    clone = dj.models.clone_model(model, input_tensors=new_input, clone_function=clone_function,
                                  call_function=lambda layer, *args: layer(*args))
    assert sorted(seen) == ["add", "bn", "drop", "out", "pre", "shared"]  # the shared layer cloned once
    assert clone.inputs[0] is new_input and clone.get_layer("shared").activation is dj.activations.relu
    with pytest.raises(ValueError, match="structure of model.input"):
        dj.models.clone_model(model, input_tensors=[new_input, new_input])
    with pytest.raises(ValueError, match="not a Sequential"):
        dj.models.clone_model(dj.Sequential([dj.Input((2,)), layers.Dense(1)]), call_function=print)


# ------------------------------------------------------------------ to_categorical
@pytest.mark.parametrize(
    "y, num_classes",
    [([0, 2, 1, 2], None), ([[1], [0], [3]], None), ([[1, 2], [0, 1]], 4), (np.array([3, 0]), 5),
     ([2], None)],
)
def test_to_categorical_matches_keras(y, num_classes):
    ours, theirs = dj.utils.to_categorical(y, num_classes), keras.utils.to_categorical(y, num_classes)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_names_an_index_out_of_range():
    with pytest.raises(ValueError, match=r"from 0 to 3; with num_classes=3 they must lie in \[0, 2\]"):
        dj.utils.to_categorical([0, 3], 3)


# ------------------------------------------------------------------ set_random_seed
@pytest.fixture
def restore_seed():
    yield
    dj.utils.set_random_seed(DEFAULT_SEED)


def test_set_random_seed_seeds_python_and_numpy_as_keras(restore_seed):
    keras.utils.set_random_seed(7)
    theirs = (random.random(), np.random.rand(3))
    dj.utils.set_random_seed(7)
    ours = (random.random(), np.random.rand(3))
    assert ours[0] == theirs[0]
    np.testing.assert_array_equal(ours[1], theirs[1])
    for bad in (1.5, "7", True):
        with pytest.raises(ValueError, match="Expected `seed` argument to be an integer"):
            dj.utils.set_random_seed(bad)


def test_set_random_seed_is_the_default_seed_of_weights_and_compile(restore_seed):
    dj.utils.set_random_seed(5)
    assert default_seed() == 5
    model = _dag(dj)
    for ours, seeded in zip(jax.tree.leaves(model.params), jax.tree.leaves(model.init(jax.random.key(5)))):
        np.testing.assert_array_equal(ours, seeded)
    model.compile("sgd", "mse")
    assert model.fit_session.seed == 5

    def run():
        dj.utils.set_random_seed(11)
        model = _dag(dj)
        model.compile("sgd", "mse")
        model.fit(X, Y, epochs=2, batch_size=8, verbose=0)  # Dropout and shuffling follow the seed
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ PyDataset
def _batches(base):
    class Batches(base):
        def __init__(self, x, y=None, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.calls = x, y, []

        def __len__(self):
            return 4

        def __getitem__(self, index):
            part = slice(8 * index, 8 * (index + 1))
            return self.x[part] if self.y is None else (self.x[part], self.y[part])

        def on_epoch_end(self):
            self.calls.append("end")

    return Batches


def test_pydataset_trains_as_keras_trains_on_its_own():
    k_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                                keras.layers.Dense(2)])
    d_model = dj.Sequential([dj.Input((4,)), layers.Dense(3, activation="tanh"), layers.Dense(2)])
    d_model.set_weights(k_model.get_weights())
    for model in (k_model, d_model):
        model.compile(optimizer="sgd", loss="mse")
    theirs = k_model.fit(_batches(keras.utils.PyDataset)(X, Y), epochs=2, shuffle=False, verbose=0)
    data = _batches(dj.utils.PyDataset)(X, Y)
    ours = d_model.fit(data, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(ours.history["loss"], theirs.history["loss"], rtol=1e-5)
    for a, b in zip(d_model.get_weights(), k_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert data.calls == ["end", "end"]
    np.testing.assert_allclose(d_model.predict(_batches(dj.utils.PyDataset)(X), verbose=0),
                               d_model.predict(X, verbose=0), rtol=1e-6)
    assert np.isclose(d_model.evaluate(data, verbose=0), d_model.evaluate(X, Y, verbose=0), rtol=1e-6)


def test_pydataset_iterates_its_batches_and_refuses_processes():
    data = _batches(dj.utils.PyDataset)(X, Y, max_queue_size=3)
    assert data.num_batches == 4 and len(list(data)) == 4 and data.max_queue_size == 3
    assert (data.workers, data.use_multiprocessing) == (1, False)
    with pytest.raises(NotImplementedError, match="use_multiprocessing=True.*threads only"):
        _batches(dj.utils.PyDataset)(X, Y, use_multiprocessing=True)


# ------------------------------------------------------------------ optimizers.schedules
SCHEDULES = [
    ("ExponentialDecay", (0.1, 7, 0.6), {}),
    ("ExponentialDecay", (0.1, 7, 0.6), {"staircase": True}),
    ("PiecewiseConstantDecay", ([3, 10, 20], [1.0, 0.5, 0.1, 0.01]), {}),
    ("PolynomialDecay", (0.1, 30), {}),
    ("PolynomialDecay", (0.1, 30, 0.01, 0.5), {"cycle": True}),
    ("PolynomialDecay", (0.1, 30, 0.01, 2.0), {}),
    ("InverseTimeDecay", (0.1, 5, 0.5), {}),
    ("InverseTimeDecay", (0.1, 5, 0.5), {"staircase": True}),
    ("CosineDecay", (0.1, 40, 0.1), {}),
    ("CosineDecay", (0.0, 40), {"warmup_target": 0.2, "warmup_steps": 15, "alpha": 0.05}),
    ("CosineDecayRestarts", (0.1, 10), {}),
    ("CosineDecayRestarts", (0.1, 10, 1.0, 0.5, 0.1), {}),
    ("CosineDecayRestarts", (0.1, 7, 1.5, 0.8), {}),
]
STEPS = [*range(0, 64), 89, 90, 91, 150, 1000, 12345]


def _values(schedule, name):
    """The schedule at every step of ``STEPS``: one call per step, or, for Keras's schedules that branch
    with ``ops.cond`` (slow step by step), all at once under ``jax.vmap``."""
    if name.startswith("CosineDecay"):
        return np.asarray(jax.vmap(schedule)(jnp.asarray(STEPS, jnp.int32)))
    return np.array([float(schedule(step)) for step in STEPS], "float32")


@pytest.mark.parametrize("name, args, kwargs", SCHEDULES)
def test_schedule_equals_keras_at_many_steps_and_has_its_config(name, args, kwargs):
    ours = getattr(schedules, name)(*args, **kwargs)
    theirs = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    expected = _values(theirs, name)
    np.testing.assert_allclose(_values(ours, name), expected, rtol=3e-6, atol=1e-8)
    traced = jax.jit(jax.vmap(ours))(jnp.asarray(STEPS, jnp.int32))  # as optax calls it: traced, int32 count
    np.testing.assert_allclose(traced, expected, rtol=2e-5, atol=1e-7)
    assert ours.get_config() == theirs.get_config()
    again = schedules.deserialize(keras.optimizers.schedules.serialize(theirs))  # Keras's dict reads here
    assert type(again) is type(ours) and again.get_config() == ours.get_config()


def test_a_schedule_drives_the_optimizer_steps_as_in_keras():
    start = RNG.normal(size=(3,)).astype("float32")
    grads = [RNG.normal(size=(3,)).astype("float32") for _ in range(6)]
    opt = dj.optimizers.SGD(schedules.PiecewiseConstantDecay([1, 3], [0.5, 0.1, 0.01]), momentum=0.5)
    params, ours = {"w": start}, []
    state = opt.init(params)
    for g in grads:
        updates, state = opt.update({"w": g}, state, params)
        params = optax.apply_updates(params, updates)
        ours.append(np.asarray(params["w"]))
    keras_schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1, 3], [0.5, 0.1, 0.01])
    k_opt, variable, theirs = keras.optimizers.SGD(keras_schedule, momentum=0.5), keras.Variable(start), []
    for g in grads:
        k_opt.apply_gradients([(g, variable)])
        theirs.append(variable.numpy())
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)


def test_a_model_compiled_with_a_schedule_saves_and_loads_compiled(tmp_path):
    model = _dag(dj)
    schedule = schedules.CosineDecay(0.01, 100, warmup_target=0.1, warmup_steps=5)
    model.compile(dj.optimizers.Adam(schedule), "mse")
    model.fit(X, Y, epochs=1, verbose=0)
    model.save(tmp_path / "m.dj")
    loaded = dj.load_model(tmp_path / "m.dj")
    assert loaded.compiled and loaded.fit_session.compile_config() == model.fit_session.compile_config()
    rate = loaded.fit_session.compile_arguments["optimizer"].get_config()["learning_rate"]
    assert isinstance(rate, schedules.CosineDecay) and rate.warmup_steps == 5
    np.testing.assert_allclose(loaded.optimizer.learning_rate, model.optimizer.learning_rate)


def test_a_keras_optimizer_with_a_keras_schedule_runs_dagjaxs_schedule():
    keras_schedule = keras.optimizers.schedules.InverseTimeDecay(0.1, 4, 0.5)
    opt = dj.optimizers.get(keras.optimizers.SGD(keras_schedule))
    assert isinstance(opt.get_config()["learning_rate"], schedules.InverseTimeDecay)
