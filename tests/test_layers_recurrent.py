"""SimpleRNN, LSTM, GRU, Bidirectional and TimeDistributed against Keras 3."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
from keras_parity import keras_and_dagjax, random_weights

import dagjax as dj
from dagjax import layers

RNG = np.random.default_rng(0)


def _seq(batch=2, time=4, features=3):
    return RNG.normal(size=(batch, time, features)).astype("float32")






def _assert_tree_close(actual, expected):
    """Outputs (an array or a list of arrays) equal Keras's (an array, list or tuple)."""
    actual = jax.tree_util.tree_leaves(actual)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=1e-5, atol=1e-5)


# Parity tests overwrite every weight with random values; zero initializers make building cheap
# (an orthogonal init compiles a QR decomposition, ~1.5 s on CPU in both libraries).
CHEAP_INIT = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}


def _both(name, **kwargs):
    """A Keras layer and a dagjax layer of class ``name`` with the same arguments."""
    kwargs = {**CHEAP_INIT, **kwargs}
    return getattr(keras.layers, name)(**kwargs), getattr(layers, name)(**kwargs)


RNN_CASES = [
    ("SimpleRNN", {"units": 3}),
    ("SimpleRNN", {"units": 2, "activation": "relu", "return_sequences": True, "go_backwards": True}),
    ("LSTM", {"units": 3}),
    ("LSTM", {"units": 2, "return_sequences": True, "return_state": True}),
    ("LSTM", {"units": 2, "go_backwards": True, "return_state": True, "use_bias": False}),
    ("GRU", {"units": 3, "return_sequences": True}),
    ("GRU", {"units": 2, "reset_after": False, "return_state": True}),
    ("GRU", {"units": 2, "reset_after": False, "go_backwards": True, "return_sequences": True}),
]


@pytest.mark.parametrize("name, kwargs", RNN_CASES)
def test_rnn_matches_keras(name, kwargs):
    k_model, d_model = keras_and_dagjax((4, 3), *_both(name, **kwargs))
    x = _seq()
    _assert_tree_close(d_model(x), k_model(x))


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_variable_length_sequences_match_keras(name):
    k_model, d_model = keras_and_dagjax((None, 3), *_both(name, units=3, return_sequences=True))
    for time in (2, 5):
        x = _seq(time=time)
        _assert_tree_close(d_model(x), k_model(x))


def test_initial_state_matches_keras():
    """``layer(x, initial_state)``, for an LSTM and a Bidirectional GRU (forward states first)."""
    shapes = [(4, 3), (2,), (2,)]
    k_x, k_h, k_c = (keras.Input(s) for s in shapes)
    (k_lstm, d_lstm), (k_gru, d_gru) = _both("LSTM", units=2), _both("GRU", units=2, return_sequences=True)
    k_model = keras.Model([k_x, k_h, k_c], [k_lstm(k_x, initial_state=[k_h, k_c]),
                                            keras.layers.Bidirectional(k_gru)(k_x, initial_state=[k_h, k_c])])
    d_x, d_h, d_c = (dj.Input(s) for s in shapes)
    d_model = dj.Model([d_x, d_h, d_c],
                       [d_lstm(d_x, [d_h, d_c]), layers.Bidirectional(d_gru)(d_x, [d_h, d_c])])
    d_model.set_weights(random_weights(k_model, RNG))
    data = [_seq(), *RNG.normal(size=(2, 2, 2)).astype("float32")]
    _assert_tree_close(d_model(data), k_model(data))


@pytest.mark.parametrize(
    "merge_mode, rnn_kwargs",
    [
        ("concat", {"units": 2, "return_sequences": True}),
        ("sum", {"units": 2}),
        ("mul", {"units": 2, "return_sequences": True}),
        ("ave", {"units": 2, "return_state": True}),
        (None, {"units": 2, "return_sequences": True, "return_state": True}),
    ],
)
def test_bidirectional_matches_keras(merge_mode, rnn_kwargs):
    cls = "GRU" if merge_mode in ("sum", "mul") else "LSTM"
    k_rnn, d_rnn = _both(cls, **rnn_kwargs)
    k_model, d_model = keras_and_dagjax((4, 3), keras.layers.Bidirectional(k_rnn, merge_mode=merge_mode),
                             layers.Bidirectional(d_rnn, merge_mode=merge_mode))
    x = _seq()
    _assert_tree_close(d_model(x), k_model(x))


def test_bidirectional_names_and_weight_order_follow_keras():
    k_model, d_model = keras_and_dagjax((4, 3), *[
        lib.Bidirectional(lib.GRU(2, name="gru", **CHEAP_INIT), name="bi",
                          backward_layer=lib.SimpleRNN(2, go_backwards=True, name="back", **CHEAP_INIT))
        for lib in (keras.layers, layers)
    ])
    wrapper = d_model.layers[-1]
    assert list(wrapper.sublayers) == [k_model.layers[-1].forward_layer.name, "back"]
    assert wrapper.forward_layer.name == "forward_gru"
    keras_paths = [w.path.replace("/gru_cell", "").replace("/simple_rnn_cell", "") for w in k_model.weights]
    assert ["/".join(p) for _, p in d_model.weight_paths()] == keras_paths
    x = _seq()
    _assert_tree_close(d_model(x), k_model(x))


@pytest.mark.parametrize(
    "inner, shape",
    [
        (lambda lib: lib.Dense(3, activation="tanh"), (4, 2)),
        (lambda lib: lib.LayerNormalization(), (4, 3)),
        (lambda lib: lib.BatchNormalization(), (4, 2, 3)),
    ],
)
def test_time_distributed_matches_keras(inner, shape):
    k_model, d_model = keras_and_dagjax(shape, keras.layers.TimeDistributed(inner(keras.layers)),
                             layers.TimeDistributed(inner(layers)))
    x = RNG.normal(size=(2, *shape)).astype("float32")
    _assert_tree_close(d_model(x), k_model(x))


def test_time_distributed_carries_the_inner_state():
    """The wrapped layer's state nests under its name and is updated once per time step, as in Keras."""
    inputs = dj.Input((None, 3))
    bn = layers.BatchNormalization(momentum=0.5, name="bn")
    model = dj.Model(inputs, layers.TimeDistributed(bn, name="td")(inputs))
    params, state = model.init()
    x = RNG.normal(2.0, 1.0, size=(2, 5, 3)).astype("float32")
    _, new_state = jax.jit(lambda p, s, x: model.apply(p, s, x, training=True))(params, state, x)
    expected = np.zeros(3)
    for step_mean in x.mean(axis=0):
        expected = 0.5 * expected + 0.5 * step_mean
    np.testing.assert_allclose(new_state["td"]["bn"]["moving_mean"], expected, rtol=1e-5)
    assert [p for _, p in model.weight_paths()] == [("td", "bn", w) for w in
                                                    ("gamma", "beta", "moving_mean", "moving_variance")]


SHAPE_CASES = [
    (lambda: layers.SimpleRNN(2, return_sequences=True, **CHEAP_INIT), (None, 3)),
    (lambda: layers.LSTM(2, return_state=True, **CHEAP_INIT), (4, 3)),
    (lambda: layers.GRU(2, reset_after=False, return_sequences=True, return_state=True, **CHEAP_INIT),
     (None, 3)),
    (lambda: layers.Bidirectional(layers.LSTM(2, return_sequences=True, **CHEAP_INIT)), (None, 3)),
    (lambda: layers.Bidirectional(layers.GRU(2, return_state=True, **CHEAP_INIT), merge_mode=None), (4, 3)),
    (lambda: layers.TimeDistributed(layers.Dense(2)), (None, 3)),
    (lambda: layers.TimeDistributed(layers.Dropout(0.5)), (4, 2, 3)),
]


@pytest.mark.parametrize("make, shape", SHAPE_CASES)
def test_symbolic_shape_equals_apply_shape(make, shape):
    inputs = dj.Input(shape)
    out = make()(inputs)
    model = dj.Model(inputs, out)
    concrete = tuple(2 if d is None else d for d in inputs.shape)
    y, _ = jax.jit(model.apply)(*model.init(), np.ones(concrete, "float32"))
    symbolic = out if isinstance(out, list) else [out]
    filled = [tuple(2 if d is None else d for d in t.shape) for t in symbolic]
    assert [a.shape for a in jax.tree_util.tree_leaves(y)] == filled


def test_dropout_needs_rng_and_changes_outputs_only_in_training():
    inputs = dj.Input((4, 3))
    lstm = layers.LSTM(3, dropout=0.5, recurrent_dropout=0.5, **CHEAP_INIT)
    gru = layers.GRU(2, reset_after=False, dropout=0.3, recurrent_dropout=0.5, **CHEAP_INIT)
    noise = layers.TimeDistributed(layers.Dropout(0.5))
    model = dj.Model(inputs, [layers.Bidirectional(lstm)(inputs), gru(inputs), noise(inputs)])
    params, state = model.init()
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(RNG.normal(size=p.shape), p.dtype), params)
    x = _seq()
    run = jax.jit(model.apply, static_argnames="training")
    plain, _ = run(params, state, x)
    key_a, key_b = jax.random.key(1, impl="rbg"), jax.random.key(2, impl="rbg")  # rbg: cheap to compile
    first, _ = run(params, state, x, training=True, rng=key_a)
    again, _ = run(params, state, x, training=True, rng=key_a)
    other, _ = run(params, state, x, training=True, rng=key_b)
    np.testing.assert_array_equal(plain[2], x)
    for i in range(3):
        np.testing.assert_array_equal(first[i], again[i])
        assert not np.allclose(first[i], plain[i]) and not np.allclose(first[i], other[i])
    lstm_only = dj.Model(inputs, model.outputs[0])  # the whole model runs the Dropout first, in Keras's order
    with pytest.raises(ValueError, match=r"'forward_lstm' \(LSTM\) needs an rng key"):
        lstm_only.apply(params, state, x, training=True)


def test_dropout_mask_is_shared_across_time_steps():
    """As Keras: one input mask per sequence, so with y_t = x_t * mask every step drops the same units."""
    inputs = dj.Input((5, 4))
    rnn = layers.SimpleRNN(4, activation=None, use_bias=False, dropout=0.5, return_sequences=True,
                           kernel_initializer="identity", recurrent_initializer="zeros")
    model = dj.Model(inputs, rnn(inputs))
    run = jax.jit(lambda p, s, x, key: model.apply(p, s, x, training=True, rng=key))
    y, _ = run(*model.init(), np.ones((2, 5, 4), "float32"), jax.random.key(0, impl="rbg"))
    assert set(np.unique(y).tolist()) == {0.0, 2.0}
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))


def test_config_round_trip():
    wrapped = layers.Bidirectional(layers.LSTM(2, go_backwards=False, return_sequences=True, dropout=0.25),
                                   merge_mode="sum", name="bi")
    for layer in (wrapped, layers.TimeDistributed(layers.Dense(3, activation="relu")),
                  layers.GRU(3, reset_after=False, recurrent_regularizer="l2"),
                  layers.BatchNormalization(renorm=True, renorm_clipping={"rmax": 2.0})):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def test_recurrent_regularizer_counts_in_weight_penalty():
    inputs = dj.Input((4, 3))
    gru = layers.GRU(2, recurrent_regularizer="l2", kernel_initializer="zeros",
                     recurrent_initializer="normal")
    model = dj.Model(inputs, gru(inputs))
    params, _ = model.init()
    expected = 0.01 * np.sum(params[gru.name]["recurrent_kernel"] ** 2)
    np.testing.assert_allclose(model.weight_penalty(params), expected, rtol=1e-6)


def test_errors_are_clear():
    with pytest.raises(layers.LayerInputError, match=r"'lstm' \(LSTM\) expects input of shape \(batch, time, "
                                                     r"features\), rank 3, got \(None, 5\)"):
        layers.LSTM(2)(dj.Input((5,)))
    with pytest.raises(layers.LayerInputError, match=r"'td' \(TimeDistributed\) expects input of rank >= 3"):
        layers.TimeDistributed(layers.Dense(2), name="td")(dj.Input((5,)))
    with pytest.raises(layers.LayerInputError,
                       match=r"initial state 1 of shape \(batch, 2\), got \(None, 3\)"):
        layers.LSTM(2)(dj.Input((4, 3)), [dj.Input((2,)), dj.Input((3,))])
    with pytest.raises(TypeError, match="must be a recurrent layer"):
        layers.Bidirectional(layers.Dense(2))
    with pytest.raises(NotImplementedError, match="stateful=True"):
        layers.GRU(2, stateful=True)
    with pytest.raises(ValueError, match=r"SimpleRNN 'rnn'.lowering: unknown lowering 'im2col'"):
        layers.SimpleRNN(2, name="rnn").lowering = "im2col"
