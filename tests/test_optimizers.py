"""Optimizers take the same steps as Keras 3's on the same gradients; the learning rate lives in the state."""

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

from dagjax import optimizers

RNG = np.random.RandomState(0)
PARAMS = {"kernel": RNG.randn(3, 2).astype("f4"), "bias": RNG.randn(2).astype("f4")}
GRADS = [{k: RNG.randn(*v.shape).astype("f4") for k, v in PARAMS.items()} for _ in range(4)]
ORDER = ("kernel", "bias")


STACKED = jax.tree.map(lambda *g: np.stack(g), *GRADS)


def _our_trajectory(opt, params=PARAMS) -> list:
    """Parameters after each step, from one jitted ``lax.scan`` over the gradients."""

    @jax.jit
    def run(params, grads):
        def step(carry, g):
            params, state = carry
            updates, state = opt.update(g, state, params)
            params = optax.apply_updates(params, updates)
            return (params, state), params

        return jax.lax.scan(step, (params, opt.init(params)), grads)[1]

    out = run(params, STACKED)
    return [jax.tree.map(lambda x, i=i: x[i], out) for i in range(len(GRADS))]


def _keras_eager_trajectory(opt, params=PARAMS) -> list:
    """Parameters after each ``apply_gradients`` of a Keras optimizer on ``keras.Variable``s."""
    variables, out = [keras.Variable(params[k]) for k in ORDER], []
    for g in GRADS:
        opt.apply_gradients(zip([g[k] for k in ORDER], variables))
        out.append({k: v.numpy() for k, v in zip(ORDER, variables)})
    return out


def _keras_trajectory(opt, params=PARAMS) -> list:
    """The same through Keras's stateless API, in one jitted ``lax.scan`` (cheaper to run)."""
    variables = [keras.Variable(params[k]) for k in ORDER]
    opt.build(variables)

    @jax.jit
    def run(values, grads):
        def step(carry, g):
            values, opt_values = carry
            values, opt_values = opt.stateless_apply(opt_values, [g[k] for k in ORDER], values)
            return (values, opt_values), dict(zip(ORDER, values))

        return jax.lax.scan(step, (values, [v.value for v in opt.variables]), grads)[1]

    out = run([v.value for v in variables], STACKED)
    return [jax.tree.map(lambda x, i=i: x[i], out) for i in range(len(GRADS))]


def _assert_same_steps(ours, theirs, rtol=2e-6):
    """Equal to float32 rounding (Keras's own jitted and eager Nadam steps differ by 1.3e-6 relative)."""
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for k in ORDER:
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=1e-7, err_msg=f"{k} after step {step + 1}")


@pytest.mark.parametrize(
    "name", ["sgd", "rmsprop", "adam", "adamw", "adagrad", "adadelta", "adamax", "nadam", "lion"]
)
def test_named_optimizer_matches_keras_defaults(name):
    ours = _our_trajectory(optimizers.get(name))
    _assert_same_steps(ours, _keras_eager_trajectory(keras.optimizers.get(name)), rtol=1e-6)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
        ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True, "clipnorm": 0.5}),
        ("RMSprop", {"learning_rate": 0.05, "momentum": 0.5, "centered": True}),
        ("RMSprop", {"rho": 0.8, "clipvalue": 0.3}),
        ("Adam", {"learning_rate": 0.05, "amsgrad": True, "weight_decay": 0.1}),
        ("Adam", {"beta_1": 0.5, "epsilon": 1e-3, "global_clipnorm": 0.4}),
        ("AdamW", {"learning_rate": 0.05, "weight_decay": 0.3}),
        ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5}),
        ("Adadelta", {"learning_rate": 1.0, "rho": 0.5}),
        ("Adamax", {"learning_rate": 0.05, "beta_2": 0.9}),
        ("Nadam", {"learning_rate": 0.05, "beta_1": 0.8}),
        ("Lion", {"learning_rate": 0.05, "beta_2": 0.9, "weight_decay": 0.2}),
    ],
)
def test_optimizer_arguments_match_keras(name, kwargs):
    ours = getattr(optimizers, name)(**kwargs)
    theirs = _keras_trajectory(getattr(keras.optimizers, name)(**kwargs))
    _assert_same_steps(_our_trajectory(ours), theirs)
    from_keras = optimizers.get(getattr(keras.optimizers, name)(**kwargs))  # a Keras object given to compile
    _assert_same_steps(_our_trajectory(from_keras), theirs)


def test_a_keras_optimizer_with_a_schedule_or_options_dagjax_lacks():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    theirs = _keras_trajectory(keras.optimizers.SGD(schedule, momentum=0.5))
    _assert_same_steps(_our_trajectory(optimizers.get(keras.optimizers.SGD(schedule, momentum=0.5))), theirs)
    with pytest.raises(NotImplementedError, match="use_ema"):
        optimizers.get(keras.optimizers.Adam(use_ema=True))


@pytest.mark.parametrize(
    "name,kwargs",
    [("SGD", {"momentum": 0.9}), ("Adam", {}), ("RMSprop", {"momentum": 0.5})],
)
def test_set_learning_rate_changes_the_step_without_recompiling(name, kwargs):
    """Halfway through, the rate drops tenfold: the steps follow Keras's, and the step traces once."""
    traces = []

    @jax.jit
    def step(params, state, grads):
        traces.append(1)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    opt = getattr(optimizers, name)(learning_rate=0.1, **kwargs)
    params, state, ours = PARAMS, opt.init(PARAMS), []
    for i, g in enumerate(GRADS):
        if i == 2:
            state = optimizers.set_learning_rate(state, 0.01)
        params, state = step(params, state, g)
        ours.append(params)
    assert len(traces) == 1
    np.testing.assert_allclose(optimizers.get_learning_rate(state), 0.01)

    keras_opt = getattr(keras.optimizers, name)(learning_rate=0.1, **kwargs)
    variables = [keras.Variable(PARAMS[k]) for k in ORDER]
    theirs = []
    for i, g in enumerate(GRADS):
        if i == 2:
            keras_opt.learning_rate = 0.01
        keras_opt.apply_gradients(zip([g[k] for k in ORDER], variables))
        theirs.append({k: v.numpy() for k, v in zip(ORDER, variables)})
    _assert_same_steps(ours, theirs)


@pytest.mark.parametrize(
    "name,kwargs",
    [("SGD", {}), ("SGD", {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1}),
     ("RMSprop", {"centered": True}), ("Adam", {"amsgrad": True}), ("AdamW", {}), ("Adagrad", {}),
     ("Adadelta", {}), ("Adamax", {}), ("Nadam", {}), ("Lion", {"weight_decay": 0.0})],
)
def test_numeric_arguments_injected_into_the_state_can_be_set_per_run(name, kwargs):
    """``injecting`` keeps them in the state; set there, the steps are the optimizer's made with them."""
    base = getattr(optimizers, name)(**kwargs)
    names = base.recipe.injectable
    values = {k: v for k, v in base.get_config().items() if k in names}
    new = {k: v * 0.8 if v else 0.3 for k, v in values.items()}
    injected = base.injecting(*names)
    params, state, ours = PARAMS, optimizers.set_hyperparams(injected.init(PARAMS), new), []
    for g in GRADS:
        updates, state = jax.jit(injected.update)(g, state, params)
        params = optax.apply_updates(params, updates)
        ours.append(params)
    want = _our_trajectory(getattr(optimizers, name)(**{**kwargs, **new}))
    for a, b in zip(ours, want):  # a float32 beta_2 shifts 1 - beta_2 by ~1e-5: close, not equal
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6), a, b)
    with pytest.raises(ValueError, match="cannot keep \\['nesterov'\\]"):
        optimizers.SGD().injecting("nesterov")


def test_learning_rate_schedule_matches_keras_and_cannot_be_set():
    schedule = optax.exponential_decay(0.1, transition_steps=2, decay_rate=0.5)
    keras_schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    ours = optimizers.SGD(learning_rate=schedule, momentum=0.9)
    _assert_same_steps(
        _our_trajectory(ours), _keras_trajectory(keras.optimizers.SGD(keras_schedule, momentum=0.9))
    )
    with pytest.raises(ValueError, match="follows a schedule"):
        optimizers.set_learning_rate(ours.init(PARAMS), 0.5)


def test_learning_rate_of_user_optax_transformations():
    plain = optax.adam(1e-3).init(PARAMS)
    assert optimizers.get_learning_rate(plain) is None
    with pytest.raises(ValueError, match=r"optax.inject_hyperparams\(optax.adam\)"):
        optimizers.set_learning_rate(plain, 1e-4)
    injected = optax.chain(optax.clip(1.0), optax.inject_hyperparams(optax.adam)(learning_rate=1e-3))
    state = optimizers.set_learning_rate(injected.init(PARAMS), 1e-4)
    np.testing.assert_allclose(optimizers.get_learning_rate(state), 1e-4)
    assert optimizers.get(injected) is injected


def test_get_builds_keras_defaults_and_rejects_unknown_names():
    for name, rate in [("adam", 0.001), ("Adam", 0.001), ("sgd", 0.01), ("RMSprop", 0.001)]:
        state = optimizers.get(name).init(PARAMS)
        np.testing.assert_allclose(optimizers.get_learning_rate(state), rate)
    with pytest.raises(ValueError, match="Unknown optimizer 'adamm'.*adamw"):
        optimizers.get("adamm")
    with pytest.raises(TypeError, match="optax GradientTransformation"):
        optimizers.get(0.1)


def test_bad_optimizer_arguments_say_how_to_fix_them():
    with pytest.raises(ValueError, match="Only one of clipnorm, clipvalue and global_clipnorm"):
        optimizers.Adam(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="momentum must be a float in"):
        optimizers.SGD(momentum=1.5)
    opt = optimizers.AdamW()
    with pytest.raises(ValueError, match=r"needs params: opt.update\(grads, opt_state, params\)"):
        opt.update(GRADS[0], opt.init(PARAMS))
    state = opt.init(PARAMS)
    assert jnp.shape(state.inner_state.slots["momentum"]["kernel"]) == (3, 2)


def test_a_frozen_layer_gets_no_update_and_no_optimizer_state_as_in_keras():
    """Keras's optimizer sees only trainable variables: the same weights, and slots for those alone."""
    import dagjax as dj

    def build(lib):
        x = lib.Input((4,))
        frozen = lib.layers.Dense(3, name="frozen")
        out = lib.layers.Dense(2, name="out")(frozen(x))
        frozen.trainable = False
        return lib.Model(x, out)

    kmodel, model = build(keras), build(dj)
    model.set_weights(kmodel.get_weights())
    x, y = RNG.normal(size=(32, 4)).astype("float32"), RNG.normal(size=(32, 2)).astype("float32")
    kmodel.compile(keras.optimizers.AdamW(0.05, weight_decay=0.1), "mse")
    model.compile(optimizers.AdamW(0.05, weight_decay=0.1), "mse")
    for m in (kmodel, model):
        m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for k, d in zip(kmodel.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(d, k, rtol=1e-5, atol=1e-6)
    keras_slots = [v for v in kmodel.optimizer.variables if len(v.shape) > 0]
    slots = [leaf for leaf in jax.tree.leaves(model.opt_state) if np.ndim(leaf) > 0]
    assert len(slots) == len(keras_slots) == 2 * 2  # momentum and velocity of out's kernel and bias
