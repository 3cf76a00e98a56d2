"""Populations: K trainings of one model as one vmapped program, member by member equal to fit alone."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import layers
from dagjax import population as pop

N, FEATURES = 50, 5  # 50 samples in batches of 16: the last batch is padded, as fit pads it


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, FEATURES)).astype("float32")
    return x, [x[:, :1] * 2 - x[:, 1:2], np.tanh(x[:, 2:3])]


def _two_heads(units=8, name=None):
    """A small MLP with two outputs, so loss weights matter."""
    inputs = dj.Input((FEATURES,))
    h = layers.Dense(units, activation="relu", name=name)(inputs)
    return dj.Model(inputs, [layers.Dense(1, name="a")(h), layers.Dense(1, name="b")(h)])


def _fit_alone(model, optimizer, seed, loss_weights, epochs, x, y):
    """One member trained by ``fit``: weights from ``seed``, ``compile(seed=seed)``; params and history."""
    model.params, model.state = model.init(jax.random.key(seed))
    model.compile(optimizer, "mse", loss_weights=loss_weights, seed=seed)
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
    return model.params, history.history


def _assert_trees_close(got, want, rtol=1e-5, atol=1e-6):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def test_each_member_ends_as_fit_alone_with_its_seed_rate_and_loss_weights():
    x, y = _data()
    model = _two_heads()
    rates, seeds = [1e-3, 1e-2, 3e-2], [0, 7, 3]
    weights = [[1.0, 1.0], [0.2, 3.0], {"a": 2.0, "b": 0.5}]
    population = pop.Population(
        model, "mse", "adam", hyperparams={"learning_rate": rates, "seed": seeds, "loss_weights": weights}
    )
    ps, histories = pop.fit_population(population, x, y, batch_size=16, epochs=2)
    for i in range(3):
        params, history = _fit_alone(model, dj.optimizers.Adam(rates[i]), seeds[i], weights[i], 2, x, y)
        _assert_trees_close(pop.member(ps.train, i).params, params)
        np.testing.assert_allclose(histories[i]["loss"], history["loss"], rtol=1e-5)
        assert set(histories[i]) == set(history)
    assert not np.allclose(histories[0]["loss"], histories[1]["loss"])  # the members did differ


def test_other_optimizer_arguments_differ_per_member_too():
    x, y = _data(1)
    model = _two_heads()
    momenta = [0.0, 0.9]
    population = pop.Population(
        model, "mse", dj.optimizers.SGD(0.05), hyperparams={"momentum": momenta, "seed": [1, 1]}
    )
    ps, _ = pop.fit_population(population, x, y, batch_size=16, epochs=2)
    for i, momentum in enumerate(momenta):
        params, _ = _fit_alone(model, dj.optimizers.SGD(0.05, momentum=momentum), 1, None, 2, x, y)
        _assert_trees_close(pop.member(ps.train, i).params, params)
    with pytest.raises(ValueError, match=r"SGD cannot keep \['betaa'\].*can keep: learning_rate, momentum"):
        pop.Population(model, "mse", "sgd", hyperparams={"betaa": [0.9, 0.8]})


def test_an_optax_factory_or_injected_transformation_varies_its_arguments():
    x, y = _data(2)
    model = _two_heads()
    values = {"learning_rate": [1e-2, 1e-3], "b1": [0.9, 0.5]}
    factory = pop.Population(model, "mse", optax.adam, hyperparams=values)
    injected = optax.inject_hyperparams(optax.adam)(learning_rate=1e-2, b1=0.9)
    from_tx = pop.Population(model, "mse", injected, hyperparams=values)
    a, _ = pop.fit_population(factory, x, y, batch_size=16)
    b, _ = pop.fit_population(from_tx, x, y, batch_size=16)
    _assert_trees_close(a.train.params, b.train.params, rtol=0, atol=0)
    model.params, model.state = model.init(jax.random.key(1))
    model.compile(optax.adam(1e-3, b1=0.5), "mse", seed=1)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    _assert_trees_close(pop.member(a.train, 1).params, model.params)
    with pytest.raises(ValueError, match=r"does not keep \['learning_rate'\].*inject_hyperparams"):
        pop.Population(model, "mse", optax.adam(1e-3), hyperparams={"learning_rate": [1e-2, 1e-3]})


def _regularized_dropout_mlp(rate=0.5, l2=0.01):
    inputs = dj.Input((FEATURES,))
    h = layers.Dense(8, activation="relu", kernel_regularizer=dj.regularizers.L2(l2))(inputs)
    return dj.Model(inputs, layers.Dense(1, name="out")(layers.Dropout(rate)(h)))


def test_dropout_rates_and_regularizer_factors_differ_per_member():
    x, (y, _) = _data(7)
    rates, factors = [0.0, 0.3, 0.7], [0.1, 0.0, 0.01]
    values = {"dropout/rate": rates, "dense/kernel/l2": factors, "seed": [2, 2, 2]}
    population = pop.Population(_regularized_dropout_mlp(), "mse", "adam", hyperparams=values)
    ps, histories = pop.fit_population(population, x, y, batch_size=16, epochs=2)
    for i in range(3):
        dj.clear_session()  # the same layer names: the same weights from the same seed
        alone = _regularized_dropout_mlp(rates[i], factors[i])
        alone.params, alone.state = alone.init(jax.random.key(2))
        alone.compile("adam", "mse", seed=2)
        history = alone.fit(x, y, batch_size=16, epochs=2, verbose=0)
        _assert_trees_close(pop.member(ps.train, i).params, alone.params)
        np.testing.assert_allclose(histories[i]["loss"], history.history["loss"], rtol=1e-5)
    dj.clear_session()
    with pytest.raises(ValueError, match=r"'dropout/rate'\]\[1\] must be in \[0.0, 1.0\], got 1.5"):
        pop.Population(_regularized_dropout_mlp(), "mse", "adam", hyperparams={"dropout/rate": [0.1, 1.5]})
    dj.clear_session()
    unknown = r"'dense/bias/l2'\] is not a value.*can: dense/kernel/l2, dropout/rate"
    with pytest.raises(ValueError, match=unknown):
        pop.Population(_regularized_dropout_mlp(), "mse", "adam", hyperparams={"dense/bias/l2": [0.1]})


def test_one_call_per_step_where_fit_would_not_fuse_gives_the_same_members(monkeypatch):
    monkeypatch.setattr(dj.config.switches, "fuse_steps", False)
    x, y = _data(9)
    model = _two_heads()
    values = {"learning_rate": [1e-2, 3e-2], "seed": [5, 6]}
    population = pop.Population(model, "mse", "adam", hyperparams=values)
    ps, _ = pop.fit_population(population, x, y, batch_size=16, epochs=1, active=[False, True])
    (_, programs), = population.compiled.values()
    assert not programs.fused and programs.train_row._cache_size() == 1
    params, _ = _fit_alone(model, dj.optimizers.Adam(3e-2), 6, None, 1, x, y)
    _assert_trees_close(pop.member(ps.train, 1).params, params)
    assert ps.train.step.tolist() == [0, 4]


def test_a_pruned_member_stops_changing_while_the_others_train_on():
    x, y = _data(3)
    population = pop.Population(_two_heads(), "mse", "adam", hyperparams={"seed": [0, 1, 2]})
    after_one, _ = pop.fit_population(population, x, y, batch_size=16, epochs=1)
    frozen = jax.device_get(pop.member(after_one.train, 1))
    others = jax.device_get(after_one.train.params)

    def prune_member_2(epoch, logs):  # what a search does: read each member's logs, prune the worst
        assert set(logs[0]) == {"loss", "a_loss", "b_loss"} and logs[1] is None
        assert (logs[2] is None) == (epoch > 0)
        return [True, False, False]

    ps, histories = pop.fit_population(
        population, x, y, batch_size=16, epochs=3, state=after_one, active=[True, False, True],
        on_epoch_end=prune_member_2,
    )
    _assert_trees_close(pop.member(ps.train, 1).params, frozen.params, rtol=0, atol=0)
    _assert_trees_close(pop.member(ps.train, 1).opt_state, frozen.opt_state, rtol=0, atol=0)
    assert ps.train.step.tolist() == [16, 4, 8]  # 4 steps an epoch: 1 + 3, 1 + 0 and 1 + 1 epochs
    assert not np.allclose(pop.member(ps.train.params, 0)["a"]["kernel"], others["a"]["kernel"][0])
    assert [len(h.get("loss", [])) for h in histories] == [3, 0, 1]


def test_the_pure_step_masks_a_member_and_shares_or_splits_the_batch():
    x, y = _data(4)
    population = pop.Population(_two_heads(), "mse", "sgd", hyperparams={"learning_rate": [0.1, 0.1]})
    ps = population.init()
    start = jax.device_get(ps.train.params)
    step = jax.jit(population.train_step, static_argnames="batch_axis")
    ps, logs = step(ps, (x, y), population.step_rngs(ps), jnp.array([True, False]))
    assert logs["loss"].shape == (2,) and ps.train.step.tolist() == [1, 0]
    _assert_trees_close(pop.member(ps.train.params, 1), pop.member(start, 1), rtol=0, atol=0)
    assert not np.allclose(ps.train.params["a"]["kernel"][0], start["a"]["kernel"][0])
    per_member = jax.tree.map(lambda v: np.stack([v, v[::-1]]), (x, y))
    ps, _ = step(ps, per_member, population.step_rngs(ps), None, batch_axis=0)
    assert ps.train.step.tolist() == [2, 1]
    outputs = population.predict_step(ps, x)
    want, _ = population.model.apply(*jax.tree.map(lambda v: v[0], (ps.train.params, ps.train.state)), x)
    assert outputs[0].shape == (2, N, 1)
    np.testing.assert_allclose(outputs[0][0], want[0], rtol=1e-6)
    evaluated = population.metric_results(population.eval_step(population.reset_metrics(ps), (x, y)))
    assert evaluated["loss"].shape == (2,) and np.all(np.isfinite(evaluated["loss"]))


def test_the_population_compiles_once_whatever_its_size_values_and_epochs():
    traces = []
    inputs = dj.Input((FEATURES,))
    h = layers.Lambda(lambda t: traces.append(1) or t)(layers.Dense(8, activation="relu")(inputs))
    model = dj.Model(inputs, [layers.Dense(1, name="a")(h), layers.Dense(1, name="b")(h)])
    x, y = _data(5)
    values = {"learning_rate": [1e-3, 1e-2, 0.1, 1.0], "loss_weights": [[1, 1], [2, 1], [1, 3], [4, 4]]}
    population = pop.Population(model, "mse", "adam", hyperparams=values)
    before = len(traces)
    ps, _ = pop.fit_population(population, x, y, batch_size=16, epochs=3, validation_data=(x, y))
    first = len(traces) - before  # the fusing probe, the train program, the validation program
    pop.fit_population(population, x, y, batch_size=16, epochs=2, state=ps, active=[True, False, True, False])
    assert first <= 3 and len(traces) - before == first
    (_, programs), = population.compiled.values()
    assert programs.train_rows._cache_size() + programs.train_row._cache_size() == 1


def test_validation_logs_come_per_member_as_fit_gives_them():
    x, y = _data(6)
    model = _two_heads()
    population = pop.Population(model, "mse", "rmsprop", hyperparams={"seed": [4, 5]})
    val = (x[:20], [v[:20] for v in y])
    _, histories = pop.fit_population(population, x, y, batch_size=16, epochs=2, validation_data=val)
    model.params, model.state = model.init(jax.random.key(5))
    model.compile("rmsprop", "mse", seed=5)
    want = model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_data=val)
    assert list(histories[1]) == list(want.history)
    for name, values in want.history.items():
        np.testing.assert_allclose(histories[1][name], values, rtol=1e-5)


def test_stack_and_unstack_round_trip_train_states():
    population = pop.Population(_two_heads(), "mse", "adam", size=3)
    ps = population.init()
    members = pop.unstack(ps.train, 3)
    assert len(members) == 3 and members[2].params["a"]["kernel"].shape == (8, 1)
    again = pop.stack(members)
    _assert_trees_close(again, ps.train, rtol=0, atol=0)
    assert jax.tree.structure(again) == jax.tree.structure(ps.train)
    assert ps.seed.tolist() == [0, 1, 2]  # default seeds: seed, seed + 1, ...
    with pytest.raises(ValueError, match="holds 3 members, not 2"):
        pop.unstack(ps.train, 2)


def test_mismatched_architectures_name_the_weight_and_its_shapes():
    narrow = _two_heads(8)
    dj.clear_session()  # the same names again
    wide = _two_heads(16)
    differs = r"member 1's \['a'\]\['kernel'\] has shape \(16, 1\).*member 0's has \(8, 1\)"
    with pytest.raises(ValueError, match=differs):
        pop.stack([narrow.init()[0], wide.init()[0]])
    with pytest.raises(ValueError, match=r"member 1 has no \['extra'\]"):
        pop.stack([{"w": jnp.zeros(2), "extra": jnp.zeros(1)}, {"w": jnp.zeros(2)}])


def test_wrong_sizes_and_lists_are_refused_in_the_users_words():
    model = _two_heads()
    with pytest.raises(ValueError, match="at least one member.*got 0"):
        pop.Population(model, "mse", "adam", size=0)
    with pytest.raises(ValueError, match=r"lists differ: 'learning_rate' has 2, 'seed' has 3"):
        pop.Population(model, "mse", "adam", hyperparams={"learning_rate": [1e-3, 1e-2], "seed": [0, 1, 2]})
    with pytest.raises(ValueError, match=r"one value per member \(4 members\): 'seed' has 3"):
        pop.Population(model, "mse", "adam", size=4, hyperparams={"seed": [0, 1, 2]})
    with pytest.raises(ValueError, match=r"hyperparams\['learning_rate'\]\[1\] must be a number"):
        pop.Population(model, "mse", "adam", hyperparams={"learning_rate": [1e-3, "fast"]})
    with pytest.raises(ValueError, match="member 1's loss_weights: `loss_weights` is one value; the model"):
        pop.Population(model, "mse", "adam", hyperparams={"loss_weights": [[1, 2], 3]})
    with pytest.raises(ValueError, match="Member 1's seed must be an int"):
        pop.Population(model, "mse", "adam", hyperparams={"seed": [0, -1]})
    with pytest.raises(ValueError, match="active needs one flag per member"):
        pop.Population(model, "mse", "adam", size=2).train_step(None, None, None, [True])


def test_models_group_by_their_training_program_not_their_names():
    def mlp(units=8, activation="relu", rate=None):
        inputs = dj.Input((FEATURES,))
        h = layers.Dense(units, activation=activation)(inputs)
        h = layers.Dropout(rate)(h) if rate else h
        return dj.Model(inputs, layers.Dense(1)(h))

    models = [mlp(), mlp(16), mlp(), mlp(activation="tanh"), mlp(rate=0.5), mlp(units=16), mlp(rate=0.2)]
    assert pop.group_by_architecture(models) == [[0, 2], [1, 5], [3], [4, 6]]
    assert pop.tunable_hyperparams([models[4], models[6]]) == {"dropout/rate": [0.5, 0.2]}
    with pytest.raises(ValueError, match="not one architecture"):
        pop.tunable_hyperparams(models[:2])


def test_the_core_step_takes_traced_values_and_without_them_is_unchanged():
    from dagjax.training import build_trainer, step_rng

    x, (y, _) = _data(8)
    model = _regularized_dropout_mlp(rate=0.3, l2=0.01)
    trainer = build_trainer(model, "mse", "adam")
    start = trainer.init_train_state(*model.init(jax.random.key(0)))
    step = jax.jit(trainer.train_step)
    plain, _ = step(start, (x, y), step_rng(0, 0))
    layer_values = {"dropout": {"rate": 0.3}, "dense": {"kernel": {"l2": 0.01}}}
    compiled_values = jax.tree.map(jnp.asarray, {**trainer.hyperparams(), "layers": layer_values})
    traced, _ = step(start, (x, y), step_rng(0, 0), compiled_values)
    _assert_trees_close(traced.params, plain.params)
    strong = {"layers": {"dense": {"kernel": {"l2": jnp.float32(5.0)}}}}
    other, _ = step(start, (x, y), step_rng(0, 0), strong)
    assert not np.allclose(other.params["dense"]["kernel"], plain.params["dense"]["kernel"])
    with pytest.raises(ValueError, match=r"Unknown step hyperparameters \['dropout'\]"):
        trainer.train_step(start, (x, y), step_rng(0, 0), {"dropout": 0.1})
    with pytest.raises(ValueError, match=r"names 'dropout/noise'.*there it can: rate"):
        trainer.train_step(start, (x, y), step_rng(0, 0), {"layers": {"dropout": {"noise": 0.1}}})


def test_init_with_other_values_equals_a_population_made_with_them():
    x, y = _data()
    model = _two_heads()
    first = pop.Population(model, "mse", "adam", hyperparams={"learning_rate": [1e-3, 1e-2], "seed": [0, 1]})
    again = {"learning_rate": [3e-2, 2e-3], "seed": [5, 2]}
    made = pop.Population(model, "mse", "adam", hyperparams=again)
    got, _ = pop.fit_population(first, x, y, batch_size=16, epochs=1, state=first.init(again))
    want, _ = pop.fit_population(made, x, y, batch_size=16, epochs=1)
    _assert_trees_close(got.train.params, want.train.params)
    with pytest.raises(ValueError, match=r"made to vary, \['learning_rate'\]; got \['beta_1'\]"):
        first.init({"beta_1": [0.9, 0.8]})


def test_raw_optax_transformations_that_differ_in_numbers_train_as_one_program():
    x, y = _data(4)
    model = _two_heads()
    optimizers = [optax.adam(1e-2), optax.adam(3e-3, b1=0.5)]
    population = pop.Population(model, "mse", optimizers, hyperparams={"seed": [5, 6]})
    assert population.size == 2
    ps, _ = pop.fit_population(population, x, y, batch_size=16)
    for i, tx in enumerate(optimizers):
        params, _ = _fit_alone(model, tx, 5 + i, None, 1, x, y)
        _assert_trees_close(pop.member(ps.train, i).params, params)
    with pytest.raises(ValueError, match=r"Member 1's optimizer .* is another program than member 0's"):
        pop.Population(model, "mse", [optax.adam(1e-2), optax.sgd(1e-2)])
    with pytest.raises(ValueError, match=r"a list of 2 for a population of size 3"):
        pop.Population(model, "mse", [optax.adam(1e-2), optax.adam(1e-3)], size=3)
