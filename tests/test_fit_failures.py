"""After any exception inside fit, evaluate or predict the model keeps usable weights (BUILD_NOTES
"Performance switches", keep_start_state): the newest ones, or those fit began with when a step
failed after consuming them."""

import functools

import jax
import numpy as np
import pytest
from jax.experimental import io_callback

import dagjax as dj
from dagjax import callbacks, layers, optimizers
from dagjax.training.fit import _perf

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 5)).astype("float32")
Y = RNG.normal(size=(40, 2)).astype("float32")
ON_CPU = jax.default_backend() == "cpu"


class Tripwire:
    """A host function that, once armed, raises from its ``at``-th call on (a step failing as it runs)."""

    def __init__(self, at: int = 4):
        self.at, self.calls, self.armed = at, 0, False

    def __call__(self, values):
        if self.armed:
            self.calls += 1
            if self.calls >= self.at:
                raise RuntimeError("the host callback failed")
        return values


def through_host(trip, x):
    """``x``, its value passed through ``trip`` on the host by ``pure_callback`` (the gradient skips it)."""
    seen = jax.pure_callback(trip, jax.ShapeDtypeStruct(x.shape, x.dtype), jax.lax.stop_gradient(x))
    return x + 0 * seen


def mse(y, p):
    return jax.numpy.mean((y - p) ** 2, axis=-1)


def with_state(middle=None):
    """Dense, BatchNormalization (so the model has state), ``middle`` (a layer, maybe), Dense."""
    x = dj.Input((5,), name="x")
    h = layers.BatchNormalization(name="bn")(layers.Dense(4, "tanh", name="hidden")(x))
    return dj.Model(x, layers.Dense(2, name="out")(middle(h) if middle else h))


def train_state(model):
    """Host copies of the model's params, state, optimizer state and step."""
    trees = (model.params, model.state, model.opt_state)
    return (*jax.tree.map(np.array, trees), int(model.optimizer.iterations))


def assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(u, v)


def assert_usable(model, step):
    """The model predicts and trains on from ``step``."""
    assert model.predict(X, verbose=0).shape == (40, 2)
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == step + 5


def fails_on_fourth_step(model, trip):
    """Fit 5 good steps, then fit with ``trip`` armed: the model must hold the train state of step 5."""
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    good = train_state(model)
    trip.armed = True
    with pytest.raises(Exception, match="host callback failed"):
        model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    trip.armed = False
    now = train_state(model)
    assert_same(now[:3], good[:3])
    assert now[3] == good[3] == 5
    assert_usable(model, 5)


def compiled(model, loss, steps_per_execution="auto"):
    model.compile(optimizers.Adam(0.1), loss, steps_per_execution=steps_per_execution)
    return model


# ------------------------------------------------------------------ a step that fails as it runs
@pytest.mark.parametrize("steps_per_execution", [1, "auto"])
def test_with_keep_start_state_forced_a_failed_step_gives_back_the_weights_fit_began_with(
    monkeypatch, steps_per_execution
):
    """A host callback in the loss raises on the fourth step: its donated inputs are gone, but the
    start copy gives back the params, state, optimizer state and step fit started from."""
    monkeypatch.setattr(_perf.switches, "keep_start_state", True)
    trip = Tripwire()

    def loss(y, p):
        jax.debug.callback(trip, p)
        return mse(y, p)

    fails_on_fourth_step(compiled(with_state(), loss, steps_per_execution), trip)


def host_callback_in_a_layer(trip, steps_per_execution="auto"):
    checked = layers.Lambda(functools.partial(through_host, trip))
    return compiled(with_state(checked), mse, steps_per_execution)


def io_callback_in_the_loss(trip, steps_per_execution="auto"):
    def note(total):
        trip(total)  # io_callback with no result wants None back

    def loss(y, p):
        io_callback(note, None, jax.lax.stop_gradient(p).sum())
        return mse(y, p)

    return compiled(with_state(), loss, steps_per_execution)


def debug_callback_in_a_nested_jit_of_the_loss(trip, steps_per_execution="auto"):
    @jax.jit
    def watched(p):
        jax.debug.callback(trip, p)
        return p

    return compiled(with_state(), lambda y, p: mse(y, watched(p)), steps_per_execution)


@pytest.mark.parametrize(
    ("make", "steps_per_execution"),
    [(host_callback_in_a_layer, 1), (io_callback_in_the_loss, "auto"),
     (debug_callback_in_a_nested_jit_of_the_loss, "auto")],
)
def test_by_default_a_step_failing_in_a_host_callback_gives_back_the_weights_fit_began_with(
    monkeypatch, make, steps_per_execution
):
    """The default switch keeps the start copy on the CPU too, as the train program calls the host."""
    monkeypatch.setattr(_perf.switches, "keep_start_state", None)
    trip = Tripwire()
    fails_on_fourth_step(make(trip, steps_per_execution), trip)


def test_without_a_start_copy_a_failed_step_says_why_the_weights_are_gone(monkeypatch):
    monkeypatch.setattr(_perf.switches, "keep_start_state", False)
    trip = Tripwire(at=1)
    model = io_callback_in_the_loss(trip, steps_per_execution=1)
    trip.armed = True
    with pytest.raises(Exception, match="host callback failed"):
        model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(RuntimeError, match="keep_start_state = True keeps a copy"):
        model.get_weights()


# ------------------------------------------------------------------ when the copy is made
def recorded_start_copies(monkeypatch):
    """Whether each fit's ``start_copy`` made a copy, as a list that fills in."""
    made, real = [], _perf.start_copy

    def recorded(*args):
        copy = real(*args)
        made.append(copy is not None)
        return copy

    monkeypatch.setattr(_perf, "start_copy", recorded)
    return made


@pytest.mark.skipif(not ON_CPU, reason="accelerators always keep the copy")
@pytest.mark.parametrize("steps_per_execution", [1, "auto"])
def test_on_the_cpu_the_default_copies_only_for_a_program_that_calls_the_host(
    monkeypatch, steps_per_execution
):
    monkeypatch.setattr(_perf.switches, "keep_start_state", None)
    made = recorded_start_copies(monkeypatch)
    plain = compiled(with_state(), mse, steps_per_execution)
    plain.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    plain.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    watched = host_callback_in_a_layer(Tripwire(), steps_per_execution)
    watched.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    assert made == [False, False, True]  # one decision per fit


def giant_loss(y, p):
    """mse plus a sorted intermediate of 2**62 bytes, which no allocation can give: the step fails."""
    shape = (p.shape[0], p.shape[1], 2**26, 2**26)
    huge = jax.numpy.sort(jax.numpy.broadcast_to(p[:, :, None, None], shape), axis=-1)[..., 0, :1]
    return mse(y, p) + 0.0 * huge.sum(axis=(-2, -1))


@pytest.mark.skipif(not ON_CPU, reason="accelerators always keep the copy")
def test_by_default_a_step_that_runs_out_of_memory_on_the_cpu_gives_back_the_weights_fit_began_with(
    monkeypatch,
):
    monkeypatch.setattr(_perf.switches, "keep_start_state", None)
    made = recorded_start_copies(monkeypatch)
    model = compiled(with_state(), giant_loss)
    before = (model.get_weights(), int(model.optimizer.iterations))
    with pytest.raises(Exception, match="RESOURCE_EXHAUSTED"):
        model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    assert made == [True]  # decided from the program's own sizes, before the step consumed anything
    assert_same(model.get_weights(), before[0])
    assert int(model.optimizer.iterations) == before[1] == 0
    compiled(model, mse)
    assert_usable(model, 0)


def test_the_decision_costs_no_extra_trace_of_the_train_step(monkeypatch):
    """The program is traced for the decision through jit's cache, which the step's call then reuses."""

    def traces_of_one_fit(keep):
        monkeypatch.setattr(_perf.switches, "keep_start_state", keep)
        traced = []
        model = compiled(with_state(), lambda y, p: traced.append(1) or mse(y, p))
        model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
        return len(traced)

    assert traces_of_one_fit(None) == traces_of_one_fit(False) > 0


def test_step_needs_sees_callbacks_nested_in_calls_control_flow_and_custom_rules():
    def say(x):
        jax.debug.callback(lambda v: None, x)
        return x

    nested = jax.custom_jvp(say)
    nested.defjvp(lambda primals, tangents: (say(*primals), *tangents))
    with_vjp = jax.custom_vjp(say)
    with_vjp.defvjp(lambda x: (say(x), None), lambda _, g: (g,))
    hiding_places = {
        "plain": say,
        "jit": jax.jit(say),
        "cond": lambda x: jax.lax.cond(x.sum() > 0, say, lambda v: v, x),
        "while": lambda x: jax.lax.fori_loop(0, 2, lambda i, v: say(v), x),
        "scan": lambda x: jax.lax.scan(lambda c, _: (say(c), None), x, None, length=2)[0],
        "checkpoint": jax.checkpoint(say),
        "custom_jvp": nested,
        "custom_vjp": with_vjp,
        "pure_callback": functools.partial(through_host, Tripwire()),
        "io_callback": lambda x: io_callback(lambda v: v, jax.ShapeDtypeStruct(x.shape, x.dtype), x),
    }
    x = jax.numpy.ones(3)
    for where, fn in hiding_places.items():
        assert _perf.step_needs(_perf.dispatching(jax.jit(fn)), (x,)).calls_host, where
    no_host = lambda v: jax.lax.cond(v.sum() > 0, jax.numpy.sin, jax.numpy.cos, v)
    assert not _perf.step_needs(_perf.dispatching(jax.jit(no_host)), (x,)).calls_host


# ------------------------------------------------------------------ exceptions between the steps
class InterruptAt(callbacks.Callback):
    """Keeps the weights at each batch end, and interrupts (as Ctrl-C) at batch ``at``."""

    def __init__(self, at):
        super().__init__()
        self.at, self.seen = at, []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(train_state(self.model))
        if batch == self.at:
            raise KeyboardInterrupt


def test_an_interrupt_mid_epoch_leaves_the_model_with_the_newest_train_state():
    model = compiled(with_state(), mse)
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    interrupt = InterruptAt(at=2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, batch_size=8, epochs=2, verbose=0, callbacks=[interrupt])
    newest = interrupt.seen[-1]
    assert newest[3] == 8  # 5 steps, then 3 of this fit's
    now = train_state(model)
    assert_same(now[:3], newest[:3])
    assert now[3] == 8
    assert_usable(model, 8)


# ------------------------------------------------------------------ evaluate and predict
class RaiseAt(callbacks.Callback):
    """Raises from ``hook`` at its second batch."""

    def __init__(self, hook):
        super().__init__()
        setattr(self, hook, self.second_batch_fails)

    def second_batch_fails(self, batch, logs=None):
        if batch == 1:
            raise RuntimeError("the callback failed")


def trained_with_a_tripwire():
    trip = Tripwire(at=2)
    model = host_callback_in_a_layer(trip)
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    return model, trip


@pytest.mark.parametrize("run", ["evaluate", "predict"])
def test_evaluate_and_predict_leave_the_weights_intact_when_they_fail(run):
    """They donate no weights: neither a host callback failing in their program nor a raising callback
    leaves the model on consumed arrays."""
    model, trip = trained_with_a_tripwire()
    good = train_state(model)
    call = getattr(model, run)
    args = (X, Y) if run == "evaluate" else (X,)
    trip.armed = True
    with pytest.raises(Exception, match="host callback failed"):
        jax.block_until_ready(call(*args, batch_size=8, verbose=0))
    trip.armed = False
    hook = "on_test_batch_end" if run == "evaluate" else "on_predict_batch_end"
    with pytest.raises(RuntimeError, match="the callback failed"):
        call(*args, batch_size=8, verbose=0, callbacks=[RaiseAt(hook)])
    now = train_state(model)
    assert_same(now[:3], good[:3])
    assert now[3] == good[3] == 5
    call(*args, batch_size=8, verbose=0)
    assert_usable(model, 5)
