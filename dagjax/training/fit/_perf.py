"""Every backend heuristic of the fit session, each behind a named switch in :data:`switches`.

The pure core (``build_trainer``) reads none of these; ``fit`` is correct
with every switch off, only slower or bigger. The figures behind each one
are in BUILD_NOTES.md ("Performance switches").

- ``fuse_steps``: with ``steps_per_execution="auto"``, run many steps per
  compiled call where that is faster: on accelerators always, on XLA:CPU
  for small convolution-free models, and for a model with a convolution when
  its loop measures faster (:func:`fuses_well`). Off: one step per call.
- ``donate``: train steps donate the train state's buffers, so params and
  optimizer state are updated in place (one copy of them, not two). The
  session copies any tree someone outside it may still hold before donating.
- ``host_optimizer_init``: an optimizer state made only of constants is
  built with numpy (:func:`init_optimizer_state`), skipping a compile.
- ``keep_start_state``: not a speed trick but the price of donation: a host
  copy of the train state a ``fit`` starts from (:func:`start_copy`), given
  back to the model if a step fails on the device after consuming its inputs
  (default: on accelerators always, where it costs no device memory; on the
  CPU when the train program calls the host or may not fit in memory, the
  ways a step fails there).
- ``hold_full_collections`` (opt-in, ``DAGJAX_HOLD_GC=1``): CPython's full
  garbage collections are held back while a compiled program is dispatched
  (and maybe traced and compiled), so the 0.05-0.15 s passes over 150k+
  objects that reclaim nothing happen at most once, after the compile.

The persistent compilation cache is opt-in too (:func:`enable_compilation_cache`).
Both opt-ins change the whole process, so each says so once in the ``dagjax`` log.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.extend import core as jex_core

from dagjax.layers._lowering import measuring
from dagjax.model import Model
from dagjax.training.core import TrainState
from dagjax.training.fit._fuse_probe import Runs, loops_faster

log = logging.getLogger("dagjax")

_ON = ("1", "on", "true", "yes")


@dataclasses.dataclass
class Switches:
    """The fit session's speed heuristics; set an attribute to False to run the plain path.

    ``keep_start_state`` is three-valued: None (the default) lets :func:`start_copy`
    decide from the backend and the train program, True or False forces it.
    """

    fuse_steps: bool = True
    donate: bool = True
    host_optimizer_init: bool = True
    keep_start_state: bool | None = None  # None: accelerators; CPU if steps call the host or are huge
    hold_full_collections: bool = os.environ.get("DAGJAX_HOLD_GC", "").strip().lower() in _ON


switches = Switches()


# ------------------------------------------------------------------ fusing steps
_CPU_FUSE_MAX_OPS = 128  # forward-pass ops up to which XLA:CPU gains from fusing (BUILD_NOTES)


def _sub_jaxprs(params: dict) -> Iterator:
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                yield item.jaxpr


def _uses(jaxpr, wanted: Callable[[str], bool]) -> bool:
    """Whether ``jaxpr`` or one nested in it (calls, control flow, custom rules) has a ``wanted`` op."""
    return any(
        wanted(eqn.primitive.name) or any(_uses(sub, wanted) for sub in _sub_jaxprs(eqn.params))
        for eqn in jaxpr.eqns
    )


def _has_conv(jaxpr) -> bool:
    return _uses(jaxpr, "conv_general_dilated".__eq__)


def _has_callback(jaxpr) -> bool:
    """Whether ``jaxpr`` calls back to Python (``pure_callback``, ``io_callback``, ``debug_callback``...)."""
    return _uses(jaxpr, lambda name: "callback" in name)


def _op_count(jaxpr) -> int:
    """Primitive ops in ``jaxpr``, counting those inside nested calls rather than the calls."""
    total = 0
    for eqn in jaxpr.eqns:
        subs = list(_sub_jaxprs(eqn.params))
        total += sum(map(_op_count, subs)) if subs else 1
    return total


def _forward_jaxpr(model: Model, sample_shapes: list | None = None):
    """The model's training forward pass on a batch of 8, traced abstractly (no compute).

    ``sample_shapes`` (one per input, past the batch axis) are the data's; without them an
    unknown dim is taken as 8.
    """
    if sample_shapes is None or len(sample_shapes) != len(model.inputs):
        sample_shapes = [tuple(8 if d is None else d for d in t.shape[1:]) for t in model.inputs]
    probes = [jax.ShapeDtypeStruct((8, *shape), t.dtype) for shape, t in zip(sample_shapes, model.inputs)]
    forward = lambda p, s, xs: model.apply(p, s, xs, training=True, rng=jax.random.key(0))
    params, state = jax.eval_shape(lambda: model.init_weights(jax.random.key(0)))
    return jax.make_jaxpr(forward)(params, state, probes).jaxpr


def model_has_conv(model: Model) -> bool:
    """Whether the model's forward pass holds a convolution."""
    return _has_conv(_forward_jaxpr(model))


def _layer_calls(model: Model) -> int:
    """Layer calls in the model's graph, those inside nested models included."""
    return sum(_layer_calls(node.layer) if isinstance(node.layer, Model) else 1 for node in model.nodes)


def fuses_well(
    model: Model, sample_shapes: list | None = None, batch_size: int | None = None,
    runs: Callable[[], Runs | None] | None = None,
) -> bool:
    """Whether many steps of ``model`` run faster in one loop than one step per call, on this backend.

    A loop saves a per-call cost (~0.1-0.3 ms on this project's CPU) but
    XLA:CPU runs a loop body slower per op, and a convolution's weight
    gradient 2-60x slower (PERF_NOTES), so on the CPU small convolution-free
    models gain (the crossover measured near ``_CPU_FUSE_MAX_OPS``) and a
    model with a convolution is measured (``_fuse_probe.loops_faster``): with its
    convolutions lowered to matmuls (``dagjax.config.lowering``) it may loop
    well; ``runs()`` gives the probe fit's own programs to time, if it can. The
    forward pass is traced on the data's ``sample_shapes``; if that
    fails, the answer is the plain path (one step per call): a heuristic
    never fails a model. Off (``switches.fuse_steps``): never.
    """
    if not switches.fuse_steps:
        return False
    if jax.default_backend() != "cpu":
        return True
    if _layer_calls(model) > _CPU_FUSE_MAX_OPS:  # each call is an op or more: too big, no need to trace
        return False
    try:
        jaxpr = _forward_jaxpr(model, sample_shapes)
    except Exception as err:  # noqa: BLE001 -- any doubt means the plain path, never a failed fit
        log.debug("dagjax: one step per call: tracing %s to choose failed (%s)", model.name, err)
        return False
    if _has_conv(jaxpr):
        return loops_faster(model, str(jaxpr), sample_shapes, batch_size, runs)
    return _op_count(jaxpr) <= _CPU_FUSE_MAX_OPS


# ------------------------------------------------------------------ donation
def donated(fn: Callable, argnum: int, static: tuple[int, ...] = ()) -> Callable:
    """``jax.jit(fn)``, donating argument ``argnum``'s buffers when ``switches.donate`` is on
    (arguments ``static`` are compile-time constants)."""
    return jax.jit(fn, donate_argnums=argnum if switches.donate else (), static_argnums=static)


def owned(trees: list, shared: bool) -> list:
    """``trees`` safe to donate: copied when someone else may hold them (``shared``) and steps donate.

    The caller hands over its only reference (the list, emptied here). The copy
    goes leaf by leaf and lets each original go as soon as it is copied, so
    when nobody else holds them after all (a ``model.params`` read and
    dropped) the copy costs one leaf of extra memory, not a second set of weights.
    """
    if not (shared and switches.donate):
        return trees
    leaves, treedef = jax.tree_util.tree_flatten(trees)
    trees.clear()
    for i, leaf in enumerate(leaves):  # waiting for each copy lets its original go before the next starts
        leaves[i] = jax.block_until_ready(jax.device_put(leaf, may_alias=False))
    return jax.tree_util.tree_unflatten(treedef, leaves)


class StepNeeds(NamedTuple):
    """What a train program needs that can make it fail while it runs on XLA:CPU."""

    calls_host: bool  # a host callback, which may raise
    working_bytes: int  # every intermediate value's size summed: a bound on the memory it allocates


_STEP_NEEDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # program -> {argument types: needs}


def step_needs(program: Callable, args: tuple) -> StepNeeds:
    """What the jitted ``program`` (maybe wrapped, as by :func:`dispatching`) needs to run on ``args``.

    ``jit``'s ``trace`` shares its cache with the call: the call that follows
    with the same ``args`` traces nothing again. The trace is the step's, so
    it runs as a dispatch does (full collections maybe held back). The answer
    is remembered per program and argument types: a later ``fit`` pays for
    typing its arguments (~0.8 ms for 600 arrays), not for a cache look-up and
    a walk of the jaxpr (~6 ms for the 5,000 ops of 100 residual blocks).
    """
    leaves, treedef = jax.tree_util.tree_flatten(args)
    known = _STEP_NEEDS.setdefault(program, {})
    types = (treedef, *map(jax.typeof, leaves))
    if types not in known:
        # unwrapped down to the jitted function, not on to the Python function jit's own __wrapped__ names
        jitted = inspect.unwrap(program, stop=lambda fn: hasattr(fn, "trace"))
        jaxpr = dispatching(jitted.trace)(*args).jaxpr.jaxpr
        known[types] = StepNeeds(_has_callback(jaxpr), _working_bytes(jaxpr))
    return known[types]


def _working_bytes(jaxpr) -> int:
    """The bytes of every value ``jaxpr`` computes, nested ones included (a loop body's once)."""
    total = 0
    for eqn in jaxpr.eqns:
        total += sum(_nbytes(var.aval) for var in eqn.outvars)
        total += sum(_working_bytes(sub) for sub in _sub_jaxprs(eqn.params))
    return total


def _nbytes(aval: Any) -> int:
    """An array value's bytes (0 for what is not an array of known shape, such as a token)."""
    shape, itemsize = getattr(aval, "shape", None), getattr(getattr(aval, "dtype", None), "itemsize", None)
    if shape is None or not isinstance(itemsize, int) or not all(isinstance(d, int) for d in shape):
        return 0
    return int(np.prod(shape, dtype=np.int64)) * itemsize


def _available_memory() -> int | None:
    """The bytes the system can still give this process (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def may_fail_on_cpu(needs: StepNeeds) -> bool:
    """Whether a step with these needs may fail while it runs on XLA:CPU, after consuming its inputs.

    It may if it calls the host (a callback can raise), or if what it computes
    could take more than half the memory available now (an allocation that
    fails raises ``RESOURCE_EXHAUSTED``). With the memory unknown, it may.
    """
    available = _available_memory()
    return needs.calls_host or available is None or needs.working_bytes > available // 2


def start_copy(ts: TrainState, step_may_fail: Callable[[], bool]) -> tuple | None:
    """A host copy of ``ts``'s params, state, optimizer state and step, kept while ``fit`` runs.

    A step that fails while it runs (an error raised by a host callback, an
    out-of-memory) has had its donated inputs consumed: with this copy the
    model still gets the weights ``fit`` started from. The copy costs host
    memory the size of the params and optimizer state. On an accelerator that
    is not the device memory a step needs, so it is always made there. On
    XLA:CPU it adds that much to the process's peak (+15-20% on the 100-block
    residual MLP, BUILD_NOTES), so it is made only when ``step_may_fail()``
    says the train program may fail (:func:`may_fail_on_cpu`). The switch
    ``keep_start_state`` True or False forces it. None when not made (or with
    ``donate`` off: then nothing is consumed).
    """
    if not switches.donate or switches.keep_start_state is False:
        return None
    if switches.keep_start_state is None and jax.default_backend() == "cpu" and not step_may_fail():
        return None
    return jax.tree_util.tree_map(np.array, (ts.params, ts.state, ts.opt_state, ts.step))


class StartCopy:
    """The start copy of one ``fit``, made (or not) just before its first step is dispatched.

    The choice needs the train program, which only the first dispatch knows
    (fused or not, the data's shapes); :meth:`before_first_step` gets it from
    the loop, and decides once per ``fit``.
    """

    def __init__(self) -> None:
        self.copy: tuple | None = None
        self._decided = False

    def before_first_step(self, program: Callable, args: tuple) -> None:
        """Keep a copy of the train state ``args[0]`` if :func:`start_copy` says so for ``program(*args)``."""
        if not self._decided:
            self._decided = True
            self.copy = start_copy(args[0], lambda: _may_fail(program, args))


def _may_fail(program: Callable, args: tuple) -> bool:
    """:func:`may_fail_on_cpu` for ``program(*args)``; True (keep a copy) if the program cannot be read."""
    try:
        return may_fail_on_cpu(step_needs(program, args))
    except Exception as err:  # noqa: BLE001 -- a heuristic never fails a fit: in doubt, keep the copy
        log.debug("dagjax: keeping the start copy: reading the train program failed (%s)", err)
        return True


def usable(ts: TrainState | None, start: tuple | None) -> TrainState | None:
    """``ts`` if every array in it can still be read, else the train state ``start`` copied (None if none)."""
    if ts is not None:
        try:
            jax.block_until_ready((ts.params, ts.state, ts.opt_state, ts.step))
            return ts
        except Exception:  # noqa: BLE001 -- deleted (donated) or poisoned by the failed step: either way, gone
            pass
    if start is None:
        return None
    params, state, opt_state, step = jax.device_put(start)
    return TrainState(params, state, opt_state, step, {})


# ------------------------------------------------------------------ optimizer state
def init_optimizer_state(tx: Any, params: Any) -> Any:
    """``tx.init(params)`` on the device, without compiling a program when it can be avoided.

    Optimizer states are mostly constants (zeros, an initial accumulator
    value, a step count). When the traced ``tx.init`` only fills shapes with
    constants, the state is built with numpy and copied over (``np.zeros``
    touches no memory), which skips the ~0.1 s XLA:CPU spends compiling even
    a trivial program; any other ``init`` is jitted, as is every one with
    ``switches.host_optimizer_init`` off.
    """
    if not switches.host_optimizer_init:
        return jax.jit(tx.init)(params)
    closed, shape = jax.make_jaxpr(tx.init, return_shape=True)(params)
    values: dict = {}
    for eqn in closed.jaxpr.eqns:
        fill = eqn.invars[0] if eqn.primitive.name == "broadcast_in_dim" else None
        if not isinstance(fill, jex_core.Literal):
            return jax.jit(tx.init)(params)
        values[eqn.outvars[0]] = fill.val
    leaves = []
    for var in closed.jaxpr.outvars:
        if isinstance(var, jex_core.Literal):
            value = var.val
        elif var in values:
            value = values[var]
        else:  # the state holds a copy of an input (or anything else): let XLA make it
            return jax.jit(tx.init)(params)
        if var.aval.weak_type:
            return jax.jit(tx.init)(params)
        dtype, dims = var.aval.dtype, var.aval.shape
        leaves.append(np.zeros(dims, dtype) if value == 0 else np.full(dims, value, dtype))
    return jax.device_put(jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(shape), leaves))


# ------------------------------------------------------------------ full collections held back
_HELD_BACK = 1 << 30  # a third threshold no dispatch reaches
_lock = threading.Lock()
_holders = 0  # calls (in any thread) now holding full collections back
_restore_to = 0  # the third threshold to restore when the last one returns
_announced: set[str] = set()


def _announce(what: str, message: str) -> None:
    """Log ``message`` the first time ``what`` takes effect in this process."""
    if what not in _announced:
        _announced.add(what)
        log.info(message)


def dispatching(program: Callable) -> Callable:
    """``program``, called with full collections held back while ``switches.hold_full_collections`` is on,
    and inside ``layers._lowering.measuring()``: the trace of a session's program may time a layer's
    lowerings to choose one (``dagjax.config.lowering``).

    Held back, a collection is not skipped: its counter stays past the restored
    threshold, so it runs at the next young collection after the call. Calls
    may overlap (threads, nesting): the first to start saves the threshold,
    the last to return restores it. The wrapper's ``__wrapped__`` is ``program``.
    """

    @functools.wraps(program)
    def call(*args: Any) -> Any:
        with measuring():
            if not switches.hold_full_collections:
                return program(*args)
            _hold()
            try:
                return program(*args)
            finally:
                _release()

    return call


def _hold() -> None:
    global _holders, _restore_to
    with _lock:
        if _holders == 0:
            young, middle, _restore_to = gc.get_threshold()
            gc.set_threshold(young, middle, _HELD_BACK)
            _announce("gc", "dagjax: full garbage collections are held back while compiled steps run.")
        _holders += 1


def _release() -> None:
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0:
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, _restore_to)


# ------------------------------------------------------------------ persistent compilation cache
CACHE_ENV = "DAGJAX_COMPILATION_CACHE"
MIN_COMPILE_SECONDS = 0.2  # programs that compile faster than this are not worth a disk entry


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/dagjax/xla``, or ``~/.cache/dagjax/xla`` when that variable is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dagjax", "xla")


def enable_compilation_cache(path: str | None = None) -> str:
    """Turn on JAX's persistent compilation cache for this process, in ``path`` (or ``default_cache_dir()``).

    A second run of the same script then loads its compiled programs from
    disk instead of compiling them. A directory the user already gave JAX
    (``jax_compilation_cache_dir``) is kept when ``path`` is None. Returns the
    directory in use.
    """
    current = jax.config.jax_compilation_cache_dir
    path = path or current or default_cache_dir()
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    _announce(f"cache {path}", f"dagjax: JAX's persistent compilation cache is on, in {path}.")
    return path


def compilation_cache_from_env() -> str | None:
    """Turn the cache on if ``DAGJAX_COMPILATION_CACHE`` asks for it (a directory, or 1/on); its directory."""
    setting = os.environ.get(CACHE_ENV, "").strip()
    if setting.lower() in ("", "0", "off", "false", "no"):
        return None
    return enable_compilation_cache(None if setting.lower() in _ON else setting)
