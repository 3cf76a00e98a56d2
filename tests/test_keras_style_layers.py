"""Keras-style custom layers: the keras.io guide "Making new layers and models via subclassing".

Each guide layer is written once (``guide_layers``) and made both as a Keras 3
layer (with ``keras.ops``) and as a dagjax one (with ``jax.numpy``); from the
same weights they give the same outputs, states and losses.
"""

import pathlib
import re
import types

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.layers import UntraceableCallError

JNP = types.SimpleNamespace(matmul=jnp.matmul, sum=jnp.sum, mean=jnp.mean, relu=jax.nn.relu, zeros=jnp.zeros)


def guide_layers(base, ops, regularizers, dense, init="random_normal"):
    """The guide's layers, on ``base`` (a Layer class) computing with ``ops``.

    ``init`` replaces the guide's random initializers: Keras compiles each one (seconds under load), so its
    side starts from zeros and the tests set random weights.
    """

    class Linear(base):
        """The guide's first Linear: weights made in __init__ from input_dim."""

        def __init__(self, units=32, input_dim=32):
            super().__init__()
            self.w = self.add_weight(shape=(input_dim, units), initializer=init, trainable=True)
            self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

    class DeferredLinear(base):
        """The guide's Linear with build(input_shape) and get_config."""

        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer=init, trainable=True)
            self.b = self.add_weight(shape=(self.units,), initializer=init, trainable=True)

        def call(self, inputs):
            return ops.matmul(inputs, self.w) + self.b

        def get_config(self):
            config = super().get_config()
            config.update({"units": self.units})
            return config

    class ComputeSum(base):
        def __init__(self, input_dim):
            super().__init__()
            self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

        def call(self, inputs):
            self.total.assign_add(ops.sum(inputs, axis=0))
            return self.total

    class MLPBlock(base):
        def __init__(self):
            super().__init__()
            self.linear_1 = DeferredLinear(32)
            self.linear_2 = DeferredLinear(32)
            self.linear_3 = DeferredLinear(1)

        def call(self, inputs):
            x = ops.relu(self.linear_1(inputs))
            x = ops.relu(self.linear_2(x))
            return self.linear_3(x)

    class ActivityRegularizationLayer(base):
        def __init__(self, rate=1e-2):
            super().__init__()
            self.rate = rate

        def call(self, inputs):
            self.add_loss(self.rate * ops.mean(inputs))
            return inputs

    class OuterLayer(base):
        def __init__(self):
            super().__init__()
            self.activity_reg = ActivityRegularizationLayer(1e-2)

        def call(self, inputs):
            return self.activity_reg(inputs)

    class OuterLayerWithKernelRegularizer(base):
        def __init__(self):
            super().__init__()
            self.dense = dense(32, kernel_initializer=init, kernel_regularizer=regularizers.l2(1e-3))

        def call(self, inputs):
            return self.dense(inputs)

    return types.SimpleNamespace(**{cls.__name__: cls for cls in (
        Linear, DeferredLinear, ComputeSum, MLPBlock, ActivityRegularizationLayer, OuterLayer,
        OuterLayerWithKernelRegularizer,
    )})


@pytest.fixture(scope="module")
def k():
    """The guide's layers in Keras, each made and called once (Keras's eager calls are slow)."""
    keras.backend.clear_session()
    lib = guide_layers(keras.layers.Layer, keras.ops, keras.regularizers, keras.layers.Dense, init="zeros")
    zeros = np.zeros((1, 1), "float32")
    built = types.SimpleNamespace(lib=lib, linear=lib.Linear(4, 2), sum=lib.ComputeSum(2),
                                  block=lib.MLPBlock(), outer=lib.OuterLayer(),
                                  regularized=lib.OuterLayerWithKernelRegularizer())
    randomize(built.linear)
    built.linear_out = built.linear(np.ones((2, 2), "float32"))
    built.sums = [built.sum(np.ones((2, 2), "float32")).numpy() for _ in range(2)]
    built.block(BLOCK_X)
    randomize(built.block)
    built.block_out = built.block(BLOCK_X)
    built.outer(zeros)
    built.regularized(zeros)
    randomize(built.regularized)
    built.regularized(zeros)
    return built


def randomize(layer, seed=0):
    """Random weights (a Keras layer or model started from zeros)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0.0, 0.5, tuple(w.shape)).astype("float32") for w in layer.weights])


@pytest.fixture
def d():
    return guide_layers(layers.Layer, JNP, dj.regularizers, layers.Dense)


BLOCK_X = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")


def numbered_per_layer(paths):
    """Keras's paths with unnamed weights numbered per layer (``variable``, ``variable_1``), as dagjax's."""
    seen = {}
    out = []
    for path in paths:
        layer, _, name = path.rpartition("/")
        if name.startswith("variable"):
            count = seen[layer] = seen.get(layer, -1) + 1
            name = "variable" if count == 0 else f"variable_{count}"
        out.append(f"{layer}/{name}")
    return out


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_linear_made_in_init_runs_eagerly_as_in_keras(k, d):
    x = np.ones((2, 2), "float32")
    d_layer = d.Linear(4, 2)
    assert [w.shape for w in d_layer.weights] == [tuple(w.shape) for w in k.linear.weights] == [(2, 4), (4,)]
    d_layer.set_weights(k.linear.get_weights())
    close(d_layer(x), k.linear_out)
    assert d_layer.w.path == "linear/variable" and d_layer.b.path == "linear/variable_1"


def test_compute_sum_keeps_its_non_trainable_total_in_the_state(k, d):
    x = np.ones((2, 2), "float32")
    d_sum = d.ComputeSum(2)
    for k_sum, expected in zip(k.sums, ([2.0, 2.0], [4.0, 4.0])):
        close(k_sum, expected)
        close(d_sum(x), expected)
    assert [w.trainable for w in d_sum.weights] == [False] and d_sum.trainable_weights == []
    close(d_sum.total.numpy(), [4.0, 4.0])
    # In a model, apply stays pure: the total comes back as the new state.
    inputs = dj.Input((2,))
    model = dj.Model(inputs, d.ComputeSum(2)(inputs))
    out, state = jax.jit(model.apply)(model.params, model.state, x)
    close(out, [2.0, 2.0])
    out, state = jax.jit(model.apply)(model.params, state, x)
    close(out, [4.0, 4.0])
    assert jax.tree_util.tree_leaves(model.state)[0].tolist() == [0.0, 0.0]


def test_mlp_block_nests_its_sublayers_weights_as_keras(k, d):
    x, k_block, k_out = BLOCK_X, k.block, k.block_out
    d_block = d.MLPBlock()
    d_block(x)  # builds, as Keras's first call does
    assert [w.shape for w in d_block.weights] == [tuple(w.shape) for w in k_block.weights]
    assert len(d_block.trainable_weights) == 6
    # Keras numbers unnamed weights across the process; dagjax numbers them per layer (stable files).
    assert [w.path for w in d_block.weights] == numbered_per_layer([w.path for w in k_block.weights])
    assert d_block.weights[2].path == "mlp_block/deferred_linear_1/variable"
    d_block.set_weights(k_block.get_weights())
    close(d_block(x), k_out)
    # The same block in a functional model: params nest as {block: {linear: {w}}}, outputs agree.
    inputs = dj.Input((8,))
    block = d.MLPBlock()
    model = dj.Model(inputs, block(inputs))
    model.set_weights(k_block.get_weights())
    assert set(model.params[block.name]) == {s.name for s in block.sublayers.values()}
    close(model.predict(x, verbose=0), k_out)


def test_add_loss_is_reported_as_keras_reports_it(k, d):
    x = np.zeros((1, 1), "float32")
    d_outer = d.OuterLayer()
    assert len(d_outer.losses) == 0
    d_outer(x)
    assert len(d_outer.losses) == len(k.outer.losses) == 1
    close(d_outer.losses[0], k.outer.losses[0])
    d_reg = d.OuterLayerWithKernelRegularizer()
    d_reg(x)
    d_reg.set_weights(k.regularized.get_weights())
    assert len(d_reg.losses) == len(k.regularized.losses) == 1
    close(d_reg.losses[0], k.regularized.losses[0])


def _regularized_model(api, lib):
    inputs = api.Input((3,))
    hidden = lib.DeferredLinear(4)(inputs)
    outputs = lib.ActivityRegularizationLayer(0.5)(hidden)
    return api.Model(inputs, outputs)


def test_add_loss_joins_the_training_loss_as_in_keras(k, d):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=(4, 4)).astype("float32")
    k_model, d_model = _regularized_model(keras, k.lib), _regularized_model(dj, d)
    randomize(k_model)
    d_model.set_weights(k_model.get_weights())
    k_model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    d_model.compile(optimizer=dj.optimizers.SGD(0.1), loss="mse")
    close(d_model.evaluate(x, y, verbose=0), k_model.evaluate(x, y, verbose=0))
    close(d_model.train_on_batch(x, y), k_model.train_on_batch(x, y))
    for got, expected in zip(d_model.get_weights(), k_model.get_weights()):
        close(got, expected)


def test_compile_without_a_loss_trains_on_add_loss_alone(d):
    """The guide's `model.compile(optimizer="adam")` then fit: the layers' add_loss is the whole loss."""
    model = _regularized_model(dj, d)
    x = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")
    kernel, bias = model.get_weights()
    model.compile(optimizer=dj.optimizers.SGD(0.1))
    close(model.evaluate(x, np.zeros((4, 4)), verbose=0), 0.5 * np.mean(x @ kernel + bias))
    history = model.fit(x, np.zeros((4, 4)), epochs=2, batch_size=4, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]


def test_get_config_round_trips_and_the_model_file_loads(d, tmp_path):
    layer = d.DeferredLinear(3, name="lin")
    config = layer.get_config()
    assert config["units"] == 3
    again = type(layer).from_config(config)
    assert (again.units, again.name) == (3, "lin")
    inputs = dj.Input((2,))
    model = dj.Model(inputs, layers.Dense(1)(d.DeferredLinear(3)(inputs)))
    x = np.ones((2, 2), "float32")
    model.save(tmp_path / "m.dagjax")
    loaded = dj.load_model(tmp_path / "m.dagjax", custom_objects={"DeferredLinear": type(layer)})
    close(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_compute_output_shape_is_used_when_given():
    class Pairs(layers.Layer):
        def call(self, inputs):
            return jnp.stack([inputs, -inputs], axis=1)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 2, *input_shape[1:])

    out = Pairs()(dj.Input((5,)))
    assert out.shape == (None, 2, 5)


def test_the_style_is_told_from_the_methods():
    class KerasStyle(layers.Layer):
        def call(self, inputs, training=None, mask=None):
            return inputs

    class DagjaxStyle(layers.Layer):
        def call(self, params, x):
            return x

    assert KerasStyle._keras_style and not DagjaxStyle._keras_style
    builtins = [getattr(layers, name) for name in dir(layers)]
    assert not [c for c in builtins if isinstance(c, type) and issubclass(c, layers.Layer) and c._keras_style]
    with pytest.raises(TypeError, match="add_weight is for Keras-style layers"):
        DagjaxStyle().add_weight(shape=(2,))


def test_training_flag_and_sublayer_state_reach_call():
    class Block(layers.Layer):
        def __init__(self):
            super().__init__()
            self.norm = layers.BatchNormalization(momentum=0.5)

        def call(self, inputs, training=None):
            return self.norm(inputs, training=training) * (2.0 if training else 1.0)

    inputs = dj.Input((2,))
    model = dj.Model(inputs, Block()(inputs))
    x = np.arange(8, dtype="float32").reshape(4, 2)
    out_train, state = model.apply(model.params, model.state, x, training=True)
    out_test, _ = model.apply(model.params, model.state, x)
    assert np.allclose(np.asarray(out_train).mean(axis=0), 0.0, atol=1e-5)
    close(out_test, x / np.sqrt(1.0 + 1e-3))
    moving_mean = state["block"]["batch_normalization"]["moving_mean"]
    close(moving_mean, 0.5 * x.mean(axis=0))


# ------------------------------------------------------------------ what a pure design cannot do
def _call_on_input(layer):
    return layer(dj.Input((2,)))


def test_python_control_flow_on_a_tensor_explains_the_dagjax_way():
    class Branchy(layers.Layer):
        def call(self, inputs):
            if jnp.sum(inputs) > 0:
                return inputs
            return -inputs

    message = r"(?s)'branchy' \(Branchy\)\.call uses a tensor's value.*jnp\.where"
    with pytest.raises(UntraceableCallError, match=message):
        _call_on_input(Branchy())


def test_assigning_a_trainable_weight_in_call_is_refused():
    class Counter(layers.Layer):
        def build(self, input_shape):
            self.count = self.add_weight(shape=(), initializer="zeros")

        def call(self, inputs):
            self.count.assign(self.count + 1.0)
            return inputs

    with pytest.raises(UntraceableCallError, match="trainable=False"):
        _call_on_input(Counter())


def test_storing_a_tensor_on_the_layer_is_refused():
    class Remember(layers.Layer):
        def call(self, inputs):
            self.last = inputs
            return inputs

    with pytest.raises(UntraceableCallError, match=r"stores a tensor on the layer \(self\.last = \.\.\.\)"):
        _call_on_input(Remember())


def test_a_layer_made_inside_call_is_refused():
    class Fresh(layers.Layer):
        def call(self, inputs):
            return layers.Dense(2)(inputs)

    with pytest.raises(UntraceableCallError, match=r"Create it once in __init__"):
        _call_on_input(Fresh())


def test_add_weight_in_call_is_refused():
    class Late(layers.Layer):
        def call(self, inputs):
            return inputs * self.add_weight(shape=(2,))

    with pytest.raises(UntraceableCallError, match=r"create them in __init__ or in build"):
        _call_on_input(Late())


def test_random_sublayers_and_nested_models_run_inside_call():
    class Block(layers.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.drop = layers.Dropout(0.5)

        def call(self, inputs, training=None):
            return self.drop(self.inner(inputs), training=training) * 2.0

    inner_in = dj.Input((3,))
    inner = dj.Model(inner_in, layers.Dense(4, kernel_initializer="ones")(inner_in))
    inputs = dj.Input((3,))
    model = dj.Model(inputs, Block(inner)(inputs))
    assert [w.path for w in model.weights] == ["dense/kernel", "dense/bias"]
    x = np.ones((2, 3), "float32")
    close(model.apply(model.params, model.state, x)[0], np.full((2, 4), 6.0))
    dropped, _ = model.apply(model.params, model.state, x, training=True, rng=jax.random.key(0))
    assert set(np.unique(np.asarray(dropped))) <= {0.0, 12.0} and 0 < np.count_nonzero(dropped) < 8


def test_the_readme_snippet_runs_as_written():
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    (snippet,) = [s for s in re.findall(r"```python\n(.*?)```", readme, re.S) if "self.add_weight" in s]
    namespace = {"dj": dj, "layers": layers}
    exec(snippet, namespace)
    model = namespace["model"]
    assert [w.path for w in model.weights] == ["linear/variable", "linear/variable_1"]
    assert np.array_equal(model.params["linear"]["variable"], np.ones((4, 2)))
    _, _, penalty = model.apply_with_penalty(model.params, model.state, np.ones((1, 4), "float32"))
    close(penalty, 1e-3 * 8)


def test_fit_keeps_the_state_call_assigns():
    class Counter(layers.Layer):
        def build(self, input_shape):
            self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")
            self.kernel = self.add_weight(shape=(input_shape[-1], 1), name="kernel")

        def call(self, inputs):
            self.count.assign_add(1.0)
            return inputs @ self.kernel

    inputs = dj.Input((2,))
    counter = Counter()
    model = dj.Model(inputs, counter(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=4, epochs=1, verbose=0)
    assert counter.count.numpy() == 2.0 and float(model.state["counter"]["count"]) == 2.0
    assert [w.path for w in model.non_trainable_weights] == ["counter/count"]


def test_a_non_trainable_weight_given_to_a_jnp_function_says_to_use_value():
    class Shift(layers.Layer):
        def build(self, input_shape):
            self.mean = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False)

        def call(self, inputs):
            return inputs - jnp.exp(self.mean)

    with pytest.raises(UntraceableCallError, match=r"pass `weight\.value` to jax\.numpy functions"):
        _call_on_input(Shift())


def test_several_inputs_build_as_in_keras():
    class Bilinear(layers.Layer):
        def build(self, x_shape, y_shape):
            self.kernel = self.add_weight(shape=(x_shape[-1], y_shape[-1]), initializer="ones", name="kernel")

        def call(self, x, y):
            return jnp.sum((x @ self.kernel) * y, axis=-1, keepdims=True)

    class Pair(layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[1][-1],), initializer="ones", name="scale")

        def call(self, inputs):
            first, second = inputs
            return jnp.concatenate([first, second * self.scale], axis=-1)

    a, b = dj.Input((2,)), dj.Input((3,))
    model = dj.Model([a, b], [Bilinear()(a, b), Pair()([a, b])])
    assert [w.shape for w in model.weights] == [(2, 3), (3,)]
    bilinear, pair = model.apply(model.params, model.state, [np.ones((1, 2)), np.ones((1, 3))])[0]
    close(bilinear, [[6.0]])
    assert pair.shape == (1, 5)


def test_a_keras_initializer_function_of_shape_and_dtype_works():
    class Offset(layers.Layer):
        def build(self, input_shape):
            fill = lambda shape, dtype=None: jnp.full(shape, 0.5, dtype)  # noqa: E731 (Keras's signature)
            self.offset = self.add_weight(shape=(input_shape[-1],), initializer=fill)

        def call(self, inputs):
            return inputs + self.offset

    inputs = dj.Input((2,))
    model = dj.Model(inputs, Offset()(inputs))
    close(model.get_weights()[0], [0.5, 0.5])


def test_a_sublayer_takes_its_calls_own_keyword_arguments():
    class Scale(layers.Layer):
        def call(self, inputs, factor=1.0):
            return inputs * factor

    class Outer(layers.Layer):
        def __init__(self):
            super().__init__()
            self.scale = Scale()

        def call(self, inputs):
            return self.scale(inputs, factor=3.0)

    close(Outer()(np.ones((1, 2), "float32")), [[3.0, 3.0]])


def _masked_model(k):
    """The masking guide's layers that read ``mask`` in call: a masked mean, and TemporalSoftmax."""

    class MaskedMean(k.layers.Layer):
        def call(self, inputs, mask=None):
            weights = k.ops.expand_dims(k.ops.cast(mask, inputs.dtype), -1)
            return k.ops.sum(inputs * weights, axis=1) / k.ops.maximum(k.ops.sum(weights, axis=1), 1.0)

        def compute_mask(self, inputs, mask=None):
            return None  # the mask is used up here: Keras then counts the layer as supporting masks

    class TemporalSoftmax(k.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            assert mask is not None
            broadcast_float_mask = k.ops.expand_dims(k.ops.cast(mask, "float32"), -1)
            inputs_exp = k.ops.exp(inputs) * broadcast_float_mask
            inputs_sum = k.ops.sum(inputs_exp * broadcast_float_mask, axis=1, keepdims=True)
            return inputs_exp / inputs_sum

    inputs = k.Input(shape=(None,), dtype="int32")
    x = k.layers.Embedding(input_dim=10, output_dim=3, mask_zero=True)(inputs)
    return k.Model(inputs, [MaskedMean()(x), TemporalSoftmax()(k.layers.Dense(1)(x))])


def test_call_gets_its_inputs_mask_as_in_keras():
    theirs, ours = _masked_model(keras), _masked_model(dj)
    ours.set_weights(theirs.get_weights())
    tokens = np.array([[3, 1, 4, 0, 0], [5, 9, 2, 6, 5]])
    for expected, got in zip(theirs(tokens), ours(tokens)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _scaled_dense(k):
    class ScaledDense(k.layers.Dense):
        """A built-in layer with its call overridden the Keras way: super().call and self.kernel."""

        def call(self, inputs):
            return super().call(inputs) * 2.0 + k.ops.sum(self.kernel)

    x = k.Input((3,))
    return k.Model(x, ScaledDense(2, activation="relu")(x))


def test_a_built_in_layer_subclass_overrides_call_as_in_keras():
    theirs, ours = _scaled_dense(keras), _scaled_dense(dj)
    ours.set_weights(theirs.get_weights())
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    ours.compile("sgd", "mse")
    ours.fit(x, np.zeros((4, 2)), verbose=0)  # differentiable through the override
