"""The fit loop's speed machinery: calls per epoch, unpadded epochs, donation, host-built states."""

import functools
import gc

import jax
import numpy as np
import optax
import pytest

import dagjax as dj
from dagjax import callbacks, layers, optimizers
from dagjax.training.core import build_trainer
from dagjax.training.fit import _perf, _sources
from dagjax.training.fit._loop import Loop
from dagjax.training.fit._perf import init_optimizer_state

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 5)).astype("float32")
Y = RNG.normal(size=(40, 2)).astype("float32")


def small():
    x = dj.Input((5,), name="x")
    return dj.Model(x, layers.Dense(2, name="out")(layers.Dense(4, "tanh", name="hidden")(x)))


def counted(loop, name):
    """Wrap a compiled step of ``loop`` to record the steps each call runs."""
    calls = []
    step = getattr(loop, name)

    @functools.wraps(step)  # the start copy's choice traces the jitted step it wraps
    def wrapper(*args):
        calls.append(args[5] if name == "_train_chunk" else 1)
        return step(*args)

    setattr(loop, name, wrapper)
    return calls


class ChunkWatcher(callbacks.Callback):
    """A chunk-safe batch hook, like the progress bar: it sees one call per chunk of steps."""

    chunk_safe = True

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(batch)


def test_an_unwatched_epoch_is_one_call_and_a_watched_one_learns_its_call_size():
    model = small()
    model.compile(optax.sgd(0.01), "mse")
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0)  # compile
    (loop,) = model.fit_session.loops
    calls = counted(loop, "_train_chunk")
    model.fit(X, Y, batch_size=4, epochs=2, verbose=0)
    assert calls == [10, 10]  # no batch hook: each epoch's 10 steps in one call
    calls.clear()
    watcher = ChunkWatcher()
    model.fit(X, Y, batch_size=4, epochs=2, verbose=0, callbacks=[watcher])
    first_epoch = watcher.ends.index(9) + 1
    assert calls[0] == 1 and len(calls) > 2  # a watched run starts small, the hook sees every call
    assert calls[first_epoch] > 1  # the second epoch starts with the size the first one learnt
    assert sum(calls) == 20 and watcher.ends[-1] == 9


def test_an_epoch_without_padding_trains_like_the_masked_program(monkeypatch):
    """40 samples in batches of 8: no padding, so no mask; the masked (host-fed) program agrees."""
    model = small()
    for batch_size, padding in ((8, False), (16, True)):
        source = _sources.data_source(model, X, Y, None, None, batch_size, None, [True], False)
        assert (source.epoch(1, 0)(1).mask is not None) == padding
    results = []
    for on_device in (True, False):
        monkeypatch.setattr(_sources, "fits_on_device", lambda size, on_device=on_device: on_device)
        model = small()
        model.compile(optax.sgd(0.05), "mse", steps_per_execution=1)
        model.fit(X, Y, batch_size=8, epochs=2, verbose=0, shuffle=False)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_the_next_epochs_shuffle_and_metrics_are_made_while_this_one_runs(monkeypatch):
    """Each epoch's shuffle is drawn once, ahead of time, and training equals one fit call per epoch."""
    plans = []
    epoch_plan = _sources.epoch_plan
    monkeypatch.setattr(_sources, "epoch_plan", lambda seed, *a: plans.append(seed) or epoch_plan(seed, *a))
    weights = []
    for epochs_per_call in (3, 1):
        model = small()
        model.compile(optax.sgd(0.05), "mse")
        for _ in range(3 // epochs_per_call):
            model.fit(X, Y, batch_size=16, verbose=0, epochs=epochs_per_call)
        weights.append(model.get_weights())
    # one fit of 3 epochs (epochs 2 and 3 drawn ahead), then three fits of one epoch (nothing ahead)
    assert plans == [(0, 0), (0, 3), (0, 6)] * 2
    (loop,) = model.fit_session.loops
    assert loop._fresh_metrics is None  # the last epoch prepared nothing
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.fixture
def hold_gc(monkeypatch):
    monkeypatch.setattr(_perf.switches, "hold_full_collections", True)


def thresholds_while_tracing() -> tuple[list, tuple]:
    """The collector's thresholds seen while fit and evaluate trace their steps, and those before."""
    seen = []

    def traced(x):
        seen.append(gc.get_threshold())
        return x

    x = dj.Input((5,), name="x")
    model = dj.Model(x, layers.Dense(2, name="out")(layers.Lambda(traced)(x)))
    model.compile(optax.sgd(0.01), "mse")
    before = gc.get_threshold()
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    model.evaluate(X, Y, batch_size=8, verbose=0)
    assert gc.get_threshold() == before
    return seen, before


def test_full_collections_are_left_alone_unless_asked_for():
    seen, before = thresholds_while_tracing()
    assert seen and set(seen) == {before}


def test_full_collections_are_held_back_while_a_step_compiles_and_restored_after(hold_gc):
    seen, before = thresholds_while_tracing()
    assert {t[2] for t in seen[-2:]} == {_perf._HELD_BACK}  # the train step's trace and the eval step's
    assert all(t[:2] == before[:2] for t in seen)  # the young generations collect as usual


def test_held_back_collections_are_restored_when_the_program_raises(hold_gc):
    def fails():
        assert gc.get_threshold()[2] == _perf._HELD_BACK
        raise RuntimeError("compile failed")

    before = gc.get_threshold()
    with pytest.raises(RuntimeError, match="compile failed"):
        _perf.dispatching(fails)()
    assert gc.get_threshold() == before


def test_overlapping_calls_restore_the_threshold_once_the_last_returns(hold_gc):
    """A thread's call starts first and returns first, inside another call: the last one out restores."""
    import threading

    before = gc.get_threshold()
    inside, release = threading.Event(), threading.Event()

    def worker_call():
        inside.set()
        release.wait(10)

    worker = threading.Thread(target=_perf.dispatching(worker_call))

    def main_call():
        release.set()
        worker.join(10)  # the worker's call has returned; this one has not
        return gc.get_threshold()[2]

    worker.start()
    inside.wait(10)
    assert _perf.dispatching(main_call)() == _perf._HELD_BACK
    assert gc.get_threshold() == before


def test_fit_updates_weights_nobody_else_holds_in_place():
    """The model's own trees go to the donating step as they are: no copy of params or optimizer state."""
    model = small()
    model.compile(optimizers.Adam(0.1), "mse")
    kernel = model.weights_view()[0]["hidden"]["kernel"]  # a view: it does not make fit copy
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    assert kernel.is_deleted()  # donated to the first step, updated in place


class Snapshots(callbacks.Callback):
    """Keeps what ``self.model.params`` gives at each epoch end, as a user's callback may."""

    def __init__(self):
        super().__init__()
        self.kept = []

    def on_epoch_end(self, epoch, logs=None):
        self.kept.append(self.model.params)


def test_weights_a_callback_keeps_stay_valid_and_each_is_its_epochs():
    model = small()
    model.compile(optimizers.Adam(0.1), "mse")
    snapshots = Snapshots()
    model.fit(X, Y, batch_size=8, epochs=3, verbose=0, callbacks=[snapshots])
    kernels = [np.asarray(p["hidden"]["kernel"]) for p in snapshots.kept]  # none was donated
    assert not np.array_equal(kernels[0], kernels[1]) and not np.array_equal(kernels[1], kernels[2])
    np.testing.assert_array_equal(kernels[-1], model.get_weights()[0])


def test_a_callback_that_reads_nothing_costs_no_copy(monkeypatch):
    copies = []
    owned = _perf.owned
    counted = lambda trees, shared: copies.extend([shared] * len(trees)) or owned(trees, shared)
    monkeypatch.setattr(_perf, "owned", counted)
    model = small()
    model.compile(optimizers.Adam(0.1), "mse")
    model.fit(X, Y, batch_size=8, epochs=3, verbose=0, callbacks=[callbacks.Callback()])
    assert copies and not any(copies)
    copies.clear()
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0, callbacks=[Snapshots()])
    assert copies.count(True) == 2 * 2  # params and state, after each epoch end that read them


def test_fit_leaves_weights_the_user_holds_intact():
    model = small()
    model.compile(optimizers.Adam(0.1), "mse")
    kernel = model.params["hidden"]["kernel"]
    before = np.asarray(kernel)
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    np.testing.assert_array_equal(np.asarray(kernel), before)  # still readable, not donated
    assert not np.array_equal(model.get_weights()[0], before)


@pytest.mark.parametrize(
    "tx",
    [
        optax.adam(1e-3),
        optimizers.get("rmsprop"),
        optimizers.get("adagrad"),
        optax.sgd(0.1, momentum=0.9),
        optax.masked(optax.adam(0.1), {"a": True, "b": False}),
    ],
)
def test_optimizer_states_built_on_the_host_equal_the_jitted_init(tx, monkeypatch):
    params = {"a": jax.numpy.ones((3, 2)), "b": jax.numpy.ones((2,))}
    expected = jax.jit(tx.init)(params)
    monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled a program"))
    state = init_optimizer_state(tx, params)
    assert jax.tree.structure(state) == jax.tree.structure(expected)
    for ours, theirs in zip(jax.tree.leaves(state), jax.tree.leaves(expected)):
        assert isinstance(ours, jax.Array) and ours.dtype == theirs.dtype and not ours.weak_type
        np.testing.assert_array_equal(ours, theirs)


def test_an_init_that_copies_the_params_is_jitted(monkeypatch):
    params = {"a": jax.numpy.arange(3.0)}
    keeps_a_copy = optax.GradientTransformation(lambda p: {"start": p}, lambda u, s, p=None: (u, s))
    compiled = []
    jit = jax.jit
    monkeypatch.setattr(jax, "jit", lambda f, **k: compiled.append(f) or jit(f, **k))
    state = init_optimizer_state(keeps_a_copy, params)
    assert compiled
    np.testing.assert_array_equal(state["start"]["a"], params["a"])


def test_host_results_equal_the_compiled_logs():
    model = small()
    trainer = build_trainer(model, "mse", optax.sgd(0.1))
    ts = trainer.init_train_state(*model.init(jax.random.key(0)))
    ts, logs = jax.jit(trainer.train_step)(ts, (X[:8], Y[:8]), jax.random.key(1))
    assert trainer.host_results(ts.metrics) == {k: float(v) for k, v in logs.items()}
    with_metric = build_trainer(model, "mse", optax.sgd(0.1), metrics=["mae"])
    assert with_metric.host_results(with_metric.init_train_state(*model.init()).metrics) is None


def test_builtin_initializers_make_weights_on_the_host_equal_to_the_compiled_init(monkeypatch):
    x = dj.Input((5,))
    h = layers.BatchNormalization()(layers.Dense(4, kernel_initializer="orthogonal")(x))
    model = dj.Model(x, layers.Dense(2, bias_initializer="ones")(layers.Dense(3, "relu")(h)))
    key = jax.random.key(7)
    expected = jax.jit(model.init_weights)(key)
    monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled a program"))
    made = model.init(key)
    assert jax.tree.structure(made) == jax.tree.structure(expected)
    for ours, theirs in zip(jax.tree.leaves(made), jax.tree.leaves(expected)):
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


def test_a_jax_random_initializer_is_drawn_in_one_compiled_program(monkeypatch):
    x = dj.Input((5,))
    normal = lambda key, shape, dtype: jax.random.normal(key, shape, dtype)
    model = dj.Model(x, layers.Dense(2, kernel_initializer=normal)(x))
    compiled = []
    jit = jax.jit
    monkeypatch.setattr(jax, "jit", lambda f, **k: compiled.append(f) or jit(f, **k))
    params, _ = model.init(jax.random.key(0))
    assert compiled == [model.init_weights] and params["dense"]["kernel"].shape == (5, 2)


def test_auto_fuses_small_models_and_runs_deep_ones_a_step_per_call_on_the_cpu():
    x = dj.Input((3,))
    h = x
    for _ in range(80):  # ~160 forward ops: past the measured XLA:CPU crossover
        h = layers.Dense(3, "tanh")(h)
    deep = dj.Model(x, h)
    if jax.default_backend() == "cpu":
        assert not _perf.fuses_well(deep) and _perf.fuses_well(small())
    loop = Loop(deep, None, "auto")
    assert loop.fuse(per_batch_callbacks=False) == (jax.default_backend() != "cpu")


def test_fit_trains_the_same_with_every_speed_switch_off(monkeypatch):
    """The plain path (one step per call, no donation, jitted optimizer init, gc untouched) is correct."""
    def train():
        model = small()
        model.compile(optimizers.Adam(0.05), "mse", metrics=["mae"])
        history = model.fit(X, Y, batch_size=8, epochs=3, shuffle=False, verbose=0)
        return model.get_weights(), history.history

    fast_weights, fast_logs = train()
    for name in ("fuse_steps", "donate", "host_optimizer_init", "hold_full_collections"):
        monkeypatch.setattr(_perf.switches, name, False)
    plain_weights, plain_logs = train()
    for a, b in zip(fast_weights, plain_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key in fast_logs:
        np.testing.assert_allclose(fast_logs[key], plain_logs[key], rtol=1e-5)


def test_importing_compiling_and_fitting_change_nothing_process_wide():
    """No JAX config, gc threshold or cache changes unless asked for (a fresh interpreter, no opt-ins)."""
    import os
    import subprocess
    import sys

    script = """
import gc, jax, numpy as np
watched = lambda: (gc.get_threshold(), gc.isenabled(), jax.config.jax_compilation_cache_dir,
                   jax.config.jax_persistent_cache_min_compile_time_secs, jax.config.jax_enable_x64)
before = watched()
import dagjax as dj
x = dj.Input((3,))
model = dj.Model(x, dj.layers.Dense(1)(x))
model.compile("adam", "mse")
model.fit(np.ones((8, 3), "float32"), np.ones((8, 1), "float32"), verbose=0)
assert watched() == before, (before, watched())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGJAX_")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=99)
    assert done.returncode == 0, done.stderr[-2000:]
