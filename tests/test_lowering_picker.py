"""The lowering picker: overrides, the off switch, measured choices (timings injected), the disk cache."""

import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dagjax as dj
from dagjax import layers
from dagjax.layers import _lowering

X = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype("float32")


@pytest.fixture
def picker(tmp_path):
    """Fresh settings and decisions, the cache in ``tmp_path``; timings from ``picker.times``."""
    settings = _lowering.settings  # the one object dj.config.lowering names: changed in place, restored
    saved = dataclasses.asdict(settings)
    for key, value in dataclasses.asdict(_lowering.LoweringSettings(cache_dir=str(tmp_path))).items():
        setattr(settings, key, value)
    _lowering.forget()
    timed: list[str] = []

    def timer(name, run):
        timed.append(name)
        return picker.times[name]

    _lowering.settings.timer = timer
    picker.times = {"xla": 3.0, "im2col": 1.0, "shifted": 2.0}
    picker.timed = timed
    picker.path = tmp_path / "decisions.json"
    yield picker
    for key, value in saved.items():
        setattr(settings, key, value)
    _lowering.forget()


def conv(**kwargs):
    layer = layers.Conv2D(4, 3, **kwargs)
    layer(dj.Input(shape=X.shape[1:]))
    return layer


def lowered_as(layer, measure=True) -> str:
    """The lowering ``layer`` takes when traced on ``X`` (inside ``measuring()`` when ``measure``)."""
    params = {w.name: jnp.zeros(w.shape) for w in layer.weight_specs}
    with _lowering.measuring() if measure else _NoContext():
        jaxpr = jax.make_jaxpr(lambda p, x: layer.apply(p, {}, x)[0])(params, X).jaxpr
    names = {eqn.primitive.name for eqn in jaxpr.eqns}
    if "conv_general_dilated" in names:
        return "xla"
    return "im2col" if "concatenate" in names else "shifted"


class _NoContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_fastest_measured_lowering_is_chosen_once_and_cached_on_disk(picker):
    assert lowered_as(conv()) == "im2col"
    assert sorted(picker.timed) == ["im2col", "shifted", "xla"]
    (value,) = json.loads(picker.path.read_text()).values()
    assert value == "im2col"
    picker.timed.clear()
    _lowering.forget()  # a new process: only the disk remembers
    picker.times = {"xla": 1.0, "im2col": 3.0, "shifted": 2.0}
    assert lowered_as(conv()) == "im2col" and picker.timed == []


def test_an_unreadable_cache_means_measuring_again(picker):
    picker.path.write_text("{not json")
    picker.times = {"xla": 3.0, "im2col": 2.0, "shifted": 1.0}
    assert lowered_as(conv()) == "shifted" and len(picker.timed) == 3
    assert list(json.loads(picker.path.read_text()).values()) == ["shifted"]


def test_without_measuring_the_backend_default_is_taken_and_nothing_timed(picker):
    assert lowered_as(conv(), measure=False) == "xla"
    _lowering.settings.measure = False
    assert lowered_as(conv()) == "xla"
    sep = layers.SeparableConv2D(4, 3)
    sep(dj.Input(shape=X.shape[1:]))
    assert lowered_as(sep) == "shifted"  # the depthwise default on the CPU
    assert picker.timed == [] and not picker.path.exists()


def test_a_failing_candidate_drops_out(picker):
    def timer(name, run):
        if name == "im2col":
            raise RuntimeError("out of memory")
        return picker.times[name]

    _lowering.settings.timer = timer
    assert lowered_as(conv()) == "shifted"


def test_overrides_per_layer_and_global_and_the_off_switch(picker):
    layer = conv()
    layer.lowering = "shifted"
    assert lowered_as(layer) == "shifted" and picker.timed == []
    layer.lowering = None
    _lowering.settings.force = "xla"
    assert lowered_as(layer) == "xla"
    _lowering.settings.force = {"Conv2D": "shifted"}
    assert lowered_as(layer) == "shifted"
    _lowering.settings.force = {layer.name: "im2col", "Conv2D": "shifted"}
    assert lowered_as(layer) == "im2col"
    _lowering.settings.force = None
    _lowering.settings.enabled = False
    layer.lowering = "im2col"
    assert lowered_as(layer) == "xla" and picker.timed == []


def test_a_wrong_lowering_name_is_a_clear_error(picker):
    layer = conv()
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d'.lowering: unknown lowering 'im2row'"):
        layer.lowering = "im2row"
    _lowering.settings.force = {"conv2d": "fast"}
    with pytest.raises(ValueError, match="layer 'conv2d': unknown lowering 'fast'"):
        lowered_as(layer)


def test_im2col_is_ruled_out_when_its_patches_would_be_too_big(picker, monkeypatch):
    from dagjax.layers import _conv

    monkeypatch.setattr(_conv, "IM2COL_MAX_BYTES", 100)
    layer = conv()
    layer.lowering = "im2col"  # an override the shapes rule out: the picker chooses among the rest
    assert lowered_as(layer) == "shifted"
    assert sorted(picker.timed) == ["shifted", "xla"]


def test_fit_measures_and_reports_its_choices(picker):
    picker.times = {"xla": 3.0, "im2col": 2.0, "shifted": 1.0}
    x = dj.Input(shape=(6, 3))
    y = layers.Conv1D(2, 3, name="conv")(x)
    model = dj.Model(x, layers.GlobalAveragePooling1D()(y))
    model.compile("sgd", "mse", steps_per_execution=1)
    model.fit(np.ones((4, 6, 3), "float32"), np.ones((4, 2), "float32"), batch_size=4, verbose=0)
    choices = dj.config.lowering_choices(model)
    assert list(choices) == ["conv"]
    assert set(choices["conv"].values()) == {"shifted"}
    assert any("(4, 6, 3):float32" in signature for signature in choices["conv"])


def test_the_race_compiles_first_and_stops_once_one_candidate_is_clearly_ahead(monkeypatch):
    from dagjax.layers import _race
    from dagjax.layers._race import MAX_ROUNDS, MIN_ROUNDS, race

    calls = {"fast": 0, "close": 0, "slow": 0, "broken": 0}
    seconds = {"fast": 0.005, "close": 0.006, "slow": 0.05}

    def attempt(name, run):  # each run "takes" its scripted time: the test does not depend on the load
        calls[name] += 1
        if name == "broken":
            return None  # raised
        return 9.0 if calls[name] == 1 else seconds[name]  # the first run compiles: not counted

    monkeypatch.setattr(_race, "_attempt", attempt)
    monkeypatch.setattr(_race, "WARM_BELOW", 0.0)  # counted below: no untimed warm runs
    runs = dict.fromkeys(calls, None)
    timings = race({name: runs[name] for name in ("fast", "slow", "broken")}, budget=10.0)
    assert timings == {"fast": 0.005, "slow": 0.05}
    assert calls == {"fast": 1 + MIN_ROUNDS, "close": 0, "slow": 1 + MIN_ROUNDS, "broken": 1}  # clearly ahead
    calls.update(dict.fromkeys(calls, 0))
    race({name: runs[name] for name in ("fast", "close")}, budget=10.0)
    assert calls["fast"] == calls["close"] == 1 + MAX_ROUNDS  # too close to call early: every round
    calls.update(dict.fromkeys(calls, 0))
    race({name: runs[name] for name in ("fast", "close")}, budget=0.001)
    assert calls["fast"] == calls["close"] == 2  # the budget is spent after the first round
    monkeypatch.setattr(_race, "WARM_BELOW", 0.01)
    calls.update(dict.fromkeys(calls, 0))
    race({name: runs[name] for name in ("fast", "slow")}, budget=10.0)
    assert calls["slow"] == 1 + MIN_ROUNDS  # long runs: timed as they come
    assert calls["fast"] == 2 + 2 * (MIN_ROUNDS - 1)  # short ones: after a warm run, once timed once


def test_a_race_run_is_timed_and_a_failing_one_left_out():
    from dagjax.layers._race import _attempt

    assert 0.01 <= _attempt("sleeps", lambda: time.sleep(0.01)) < 1.0
    assert _attempt("fails", lambda: 1 / 0) is None


def test_auto_steps_per_execution_fuses_a_conv_model_when_its_loop_measures_faster(picker):
    from dagjax.training.fit import _perf

    x = dj.Input(shape=(6, 3))
    model = dj.Model(x, layers.GlobalAveragePooling1D()(layers.Conv1D(2, 3)(x)))
    picker.times = {"fused": 1.0, "single": 2.0}
    assert _perf.fuses_well(model, [(6, 3)], 4)
    assert picker.timed == ["single", "fused"]
    assert _perf.fuses_well(model, [(6, 3)], 4) and len(picker.timed) == 2  # remembered
    picker.times = {"fused": 0.95, "single": 1.0}  # not clearly faster: one step per call
    assert not _perf.fuses_well(model, [(6, 3)], 8)
    assert not _perf.fuses_well(model, [(6, 3)], None)  # no batch size, nothing to measure
    _lowering.settings.measure = False
    picker.times = {"fused": 0.1, "single": 1.0}
    assert not _perf.fuses_well(model, [(6, 3)], 16) and len(picker.timed) == 4


@pytest.mark.parametrize("trainable", [True, False])
def test_the_loop_is_not_run_when_a_trained_convolution_stays_xlas(picker, trainable):
    """XLA's convolution's weight gradient in a loop is the CPU's trap (20-115 s for the probe's loop in
    BUILD_NOTES): when a trained convolution decided on it, the probe says one step per call without
    compiling or running the loop; a frozen one has no weight gradient, and its loop is timed."""
    from dagjax.training.fit import _perf

    ran = []

    def timer(name, run):
        if name in ("fused", "single"):
            run()  # compiles (the single step's trace makes the layers' decisions), or raises
            ran.append(name)
            return {"fused": 1.0, "single": 2.0}[name]
        return picker.times[name]

    _lowering.settings.timer = timer
    picker.times = {"xla": 1.0, "im2col": 2.0, "shifted": 3.0}  # XLA's convolution measures fastest
    x = dj.Input(shape=(6, 3))
    model = dj.Model(x, layers.Dense(1)(layers.GlobalAveragePooling1D()(layers.Conv1D(2, 3, name="c")(x))))
    model.get_layer("c").trainable = trainable
    assert _perf.fuses_well(model, [(6, 3)], 4) is not trainable
    assert ran == (["single"] if trainable else ["single", "fused"])
    assert set(dj.config.lowering_choices(model)["c"].values()) == {"xla"}
    assert _perf.fuses_well(model, [(6, 3)], 4) is not trainable and len(ran) == (1 if trainable else 2)


def test_the_loop_probe_runs_the_same_steps_both_ways():
    from dagjax.training.fit import _fuse_probe

    x = dj.Input(shape=(5, 2))
    model = dj.Model(x, layers.Dense(1)(layers.Flatten()(layers.Conv1D(2, 2)(x))))
    runs = _fuse_probe.step_runs(model, [(5, 2)], 3)
    assert runs["fused"]() is None  # the first run compiles and runs nothing
    runs["single"]()
    fused, single = runs["fused"](), runs["single"]()
    for a, b in zip(jax.tree_util.tree_leaves(fused), jax.tree_util.tree_leaves(single)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_the_readme_snippet_runs(picker):
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    (snippet,) = [s for s in re.findall(r"```python\n(.*?)```", readme, re.S) if "lowering_choices" in s]
    x = dj.Input(shape=(6, 3))
    lstm = layers.LSTM(2, recurrent_initializer="zeros", name="lstm")  # zeros: no QR to compile
    model = dj.Model(x, [layers.Conv1D(2, 3, name="conv2d")(x), lstm(x)])
    exec(snippet, {"dj": dj, "model": model})
    assert model.get_layer("conv2d").lowering == "im2col" and model.get_layer("lstm").lowering == "unrolled"
    assert _lowering.settings.force == "xla" and not _lowering.settings.enabled


def test_symbolic_sizes_trace_with_the_reference_lowering(picker):
    """An export for every input size traces with symbolic dims: nothing is measured, nothing fails."""
    x = dj.Input(shape=(None, None, 3))
    h = layers.Conv2D(4, 3, strides=2, padding="same")(x)
    h = layers.SeparableConv2D(3, 3, padding="same")(h)
    h = layers.Conv2DTranspose(2, 3, strides=2, padding="same")(h)
    model = dj.Model(x, h)
    b, height, width = jax.export.symbolic_shape("b, h, w")
    spec = jax.ShapeDtypeStruct((b, height, width, 3), "float32")
    with _lowering.measuring():
        out = jax.eval_shape(lambda p, v: model.apply(p, model.state, v)[0], model.params, spec)
    assert out.shape[0] == b and picker.timed == []
    assert set(dj.config.lowering_choices(model)["conv2d"].values()) == {"xla"}


def loop_lowered_as(layer, steps: int, measure=True) -> str:
    """How ``layer`` (a recurrent layer, already called) loops over ``steps`` time steps when traced."""
    params = {w.name: jnp.zeros(w.shape) for w in layer.weight_specs}
    x = np.zeros((2, steps, 3), "float32")
    with _lowering.measuring() if measure else _NoContext():
        jaxpr = jax.make_jaxpr(lambda p, x: layer.apply(p, {}, x)[0])(params, x).jaxpr
    return "scan" if "scan" in {eqn.primitive.name for eqn in jaxpr.eqns} else "unrolled"


def gru():
    layer = layers.GRU(2, recurrent_initializer="zeros")
    layer(dj.Input(shape=(None, 3)))
    return layer


def test_a_recurrent_loop_is_unrolled_when_that_measures_faster_and_only_for_short_fixed_lengths(picker):
    from dagjax.layers._time_loops import MAX_UNROLLED_STEPS

    picker.times = {"scan": 2.0, "unrolled": 1.0}
    layer = gru()
    assert loop_lowered_as(layer, 4) == "unrolled" and picker.timed == ["scan", "unrolled"]
    assert loop_lowered_as(layer, 4) == "unrolled" and len(picker.timed) == 2  # remembered
    assert loop_lowered_as(layer, MAX_UNROLLED_STEPS + 1) == "scan" and len(picker.timed) == 2
    assert loop_lowered_as(layer, 5, measure=False) == "scan"  # not measuring: the default
    picker.times = {"scan": 1.0, "unrolled": 2.0}
    assert loop_lowered_as(layer, 6) == "scan" and len(picker.timed) == 4
    assert set(_lowering.choices([layer])[layer.name].values()) == {"unrolled", "scan"}


def test_a_recurrent_loop_follows_the_overrides_and_the_off_switch(picker):
    layer = gru()
    layer.lowering = "unrolled"
    assert loop_lowered_as(layer, 4) == "unrolled" and picker.timed == []
    layer.lowering = None
    _lowering.settings.force = {"GRU": "unrolled", "Conv2D": "xla"}
    assert loop_lowered_as(layer, 4) == "unrolled"
    _lowering.settings.force = "im2col"  # no recurrent layer offers it: the picker chooses
    picker.times = {"scan": 1.0, "unrolled": 2.0}
    assert loop_lowered_as(layer, 4) == "scan" and picker.timed == ["scan", "unrolled"]
    _lowering.settings.force = None
    _lowering.settings.enabled = False
    layer.lowering = "unrolled"
    assert loop_lowered_as(layer, 4) == "scan"  # off: the reference, a lax.scan


def compiled_names(run):
    """The names of the programs XLA compiles while ``run()`` runs, on any thread (the probe times on its
    own): counted through a JAX monitoring listener registered for this call only."""
    names = []

    def listen(event, seconds, fun_name="", **_):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        run()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return names


@pytest.mark.parametrize("form", ["fused", "single"])
def test_the_loop_probe_runs_fits_own_steps_on_a_copy_compiling_each_form_once(picker, form):
    """The probe times fit's own two programs on a copy of the train state: the form fit keeps is not
    compiled again, the real weights are not consumed, and training is bit for bit as without a probe."""
    ran = []
    times = {"fused": 1.0, "single": 2.0 if form == "fused" else 1.0}  # not clearly faster: one per call

    def timer(name, run):  # the layers' candidates are not run; each form compiles, then runs once
        if name not in times:
            return picker.times[name]
        run()  # compiles
        ran.append(name)
        run()
        return times[name]

    _lowering.settings.timer = timer
    data = np.random.default_rng(0).normal(size=(12, 6, 3)).astype("float32"), np.ones((12, 2), "float32")

    def trained(steps_per_execution, model=None):
        if model is None:
            dj.clear_session()
            x = dj.Input(shape=(6, 3))
            model = dj.Model(x, layers.GlobalAveragePooling1D()(layers.Conv1D(2, 3)(x)))
            model.compile("adam", "mse", steps_per_execution=steps_per_execution)
        names = compiled_names(lambda: model.fit(*data, batch_size=4, epochs=2, verbose=0))
        steps = ("jit(train_one)", "jit(train_chunk)", "jit(step)", "jit(loop)")  # fit's, the old probe's
        return model, [name for name in names if name in steps]

    model, steps = trained("auto")
    assert ran == ["single", "fused"]
    assert sorted(steps) == ["jit(train_chunk)", "jit(train_one)"]  # each form once: the kept one not again
    assert trained("auto", model)[1] == [] and len(ran) == 2  # a later fit: nothing measured or compiled
    fit_again = model.get_weights()
    _lowering.settings.measure = False
    plain, _ = trained(100 if form == "fused" else 1)  # the same form, chosen without a probe
    trained(None, plain)
    for a, b in zip(fit_again, plain.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_loop_probe_times_steps_of_its_own_for_batches_fed_from_the_host(picker):
    """A generator's blocks of batches depend on the choice, so none is there to run fit's programs on
    ahead: the probe times train-like steps of its own, and training goes on with the form chosen."""

    def timer(name, run):
        if name in ("fused", "single"):
            run()  # compiles
        return {"fused": 1.0, "single": 2.0}.get(name) or picker.times[name]

    _lowering.settings.timer = timer
    x = dj.Input(shape=(6, 3))
    model = dj.Model(x, layers.GlobalAveragePooling1D()(layers.Conv1D(2, 3)(x)))
    model.compile("sgd", "mse")
    batches = ((np.ones((4, 6, 3), "float32"), np.ones((4, 2), "float32")) for _ in range(3))
    names = compiled_names(lambda: model.fit(batches, epochs=1, verbose=0))
    assert {"jit(loop)", "jit(step)", "jit(train_chunk)"} <= set(names) and "jit(train_one)" not in names
