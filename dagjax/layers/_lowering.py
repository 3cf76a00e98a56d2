"""The lowering picker: which of a layer's equal implementations its traced call uses.

A layer that offers several lowerings (the convolutions: ``"xla"``,
``"im2col"``, ``"shifted"``; the recurrent layers' loops: ``"scan"``,
``"unrolled"``) asks :func:`choose` while it is traced, with the real shapes.
The answer, in this order:

1. ``settings.enabled`` off: the reference (``"xla"``, ``"scan"``: the plain path);
2. the layer's own ``lowering`` attribute, then ``settings.force`` (global);
3. the only candidate left when the shapes rule the others out;
4. a decision made before for the same signature (shapes, dtype, op, backend,
   device): kept in memory, and on disk (:func:`cache_path`) so later runs pay
   nothing; an unreadable cache file is ignored and measured again;
5. inside :func:`measuring` (the fit session's compiled programs enter it:
   ``fit``, ``evaluate``, ``predict``) with ``settings.measure`` on and
   concrete sizes: each candidate's forward + backward is compiled and raced
   against the others (``_race``: interleaved rounds, ended early when one is
   clearly ahead), on a separate thread (the trace in progress is left alone),
   and the fastest is kept; a candidate that fails drops out;
6. otherwise the layer's default for the backend (what dagjax did before
   measuring existed), so shape inference and a user's own ``jit`` never measure.

``settings.timer`` replaces the race (tests inject timings with it).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.layers._race import compiled_run, race

log = logging.getLogger("dagjax")

REFERENCE = "xla"  # a convolution's plain path; a layer family may name its own (``reference=``)
CONV_NAMES = ("xla", "im2col", "shifted")  # the convolutions' lowerings
RECURRENT_NAMES = ("scan", "unrolled")  # the recurrent layers' time loops (``_recurrent``)
NAMES = CONV_NAMES + RECURRENT_NAMES  # every lowering a layer may offer
CACHE_ENV = "DAGJAX_LOWERING_CACHE"  # a directory for the decisions file, or "off"
MAX_RECORDED = 4  # signatures remembered per layer for :func:`choices`
Timer = Callable[[str, Callable[[], Any]], float]  # (candidate name, run once) -> seconds


@dataclasses.dataclass
class LoweringSettings:
    """How convolutions and recurrent loops are lowered; the module docstring has the order of the choice.

    ``force``: one lowering name for every layer that offers it, or a dict
    from layer name or class name to a lowering name. ``cache_dir``: where
    measured decisions are kept (None: :func:`cache_path`'s default).
    """

    enabled: bool = True
    measure: bool = True
    force: str | dict | None = None
    cache_dir: str | None = None
    timer: Timer | None = None
    max_measure_seconds: float = 0.5  # timing budget per candidate, compile aside (``_race``)


settings = LoweringSettings()

_decisions: dict[str, str] = {}  # signature -> name, this process's
_disk_loaded: set[str] = set()  # cache files already merged into _decisions
_lock = threading.Lock()
_local = threading.local()


@contextlib.contextmanager
def measuring() -> Iterator[None]:
    """Within this block (and this thread) an undecided signature is measured rather than defaulted."""
    depth = getattr(_local, "measuring", 0)
    _local.measuring = depth + 1
    try:
        yield
    finally:
        _local.measuring = depth


def backend_key() -> str:
    """The backend, its device kind and jax's version: a decision holds for these only."""
    device = jax.devices()[0]
    return f"{jax.default_backend()}|{getattr(device, 'device_kind', '?')}|jax {jax.__version__}"


def cache_path() -> str | None:
    """The decisions file: in ``settings.cache_dir``, or ``$DAGJAX_LOWERING_CACHE``, or beside JAX's
    compilation cache directory when one is set (``<dir>-dagjax-lowering``), else
    ``$XDG_CACHE_HOME/dagjax/lowering`` (``~/.cache/dagjax/lowering``). None: no disk cache ("off").
    """
    where = settings.cache_dir or os.environ.get(CACHE_ENV, "").strip()
    if where.lower() in ("off", "0", "none"):
        return None
    if not where:
        jax_dir = jax.config.jax_compilation_cache_dir
        if jax_dir:
            where = os.path.abspath(jax_dir).rstrip(os.sep) + "-dagjax-lowering"
        else:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
            where = os.path.join(base, "dagjax", "lowering")
    return os.path.join(where, "decisions.json")


def _read(path: str) -> dict[str, str]:
    """The decisions in ``path``; an absent, unreadable or malformed file is no decisions."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _write(path: str, key: str, name: str) -> None:
    """Add one decision to ``path``, atomically (temporary file, then rename); failures only log."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = {**_read(path), key: name}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".decisions-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=0, sort_keys=True)
        os.replace(tmp, path)
    except OSError as err:
        log.debug("dagjax: lowering decision not cached in %s (%s)", path, err)


def remembered(key: str) -> str | None:
    """The decision made under ``key`` (by this process, or one before it: the disk cache), or None."""
    with _lock:
        path = cache_path()
        if path is not None and path not in _disk_loaded:
            _disk_loaded.add(path)
            for k, v in _read(path).items():
                _decisions.setdefault(k, v)
        return _decisions.get(key)


def remember(key: str, name: str) -> None:
    """Keep the decision ``name`` under ``key``, in memory and in the disk cache."""
    with _lock:
        _decisions[key] = name
        path = cache_path()
        if path is not None:
            _write(path, key, name)


def forget() -> None:
    """Drop this process's decisions (the disk cache stays): the next trace decides again."""
    with _lock:
        _decisions.clear()
        _disk_loaded.clear()


def check_name(name: Any, where: str, allowed: tuple = NAMES) -> None:
    """A ValueError, naming ``where``, unless ``name`` is one of the ``allowed`` lowerings (or None)."""
    if name is not None and name not in allowed:
        raise ValueError(f"{where}: unknown lowering {name!r}; choose one of {list(allowed)} (or None).")


def _override(layer: Any, candidates: dict) -> str | None:
    """The layer's own ``lowering``, else ``settings.force``'s for it, if the shapes allow it; else None."""
    wanted = getattr(layer, "lowering", None)
    if wanted is None and isinstance(settings.force, dict):
        wanted = settings.force.get(layer.name, settings.force.get(type(layer).__name__))
    elif wanted is None:
        wanted = settings.force
    check_name(wanted, f"lowering override for layer '{layer.name}'")
    if wanted is not None and wanted not in candidates:
        log.debug("dagjax: %s cannot be lowered as %s for these shapes; choosing", layer.name, wanted)
        return None
    return wanted


def choose(
    layer: Any, signature: str, candidates: dict[str, Callable], example: tuple, default: str,
    reference: str = REFERENCE,
) -> str:
    """The lowering of ``layer`` for ``signature``, among ``candidates`` (name -> fn over ``example``'s
    arrays); ``default`` is the backend's when nothing else decides, ``reference`` the plain path (the
    off switch's, and the answer when every measured candidate failed). Recorded in ``layer.lowered``
    when traced by a session's program (inside :func:`measuring`).
    """
    name = _pick(layer, signature, candidates, example, default, reference)
    if not getattr(_local, "measuring", 0):  # shape inference and the user's own traces: not recorded
        return name
    lowered = layer.__dict__.setdefault("lowered", {})
    lowered.pop(signature, None)
    lowered[signature] = name  # newest last
    while len(lowered) > MAX_RECORDED:
        del lowered[next(iter(lowered))]
    return name


def lower(
    layer: Any, op: str, candidates: dict[str, Callable], args: tuple, default: str = REFERENCE,
    reference: str = REFERENCE,
) -> Any:
    """``candidates[name](*args)`` for the lowering :func:`choose` picks, the signature made from ``op``
    (the operation and its static settings) and the arrays' shapes and dtypes.
    """
    shapes = " ".join(f"{tuple(a.shape)}:{np.dtype(a.dtype).name}" for a in args)
    name = choose(layer, f"{op} {shapes}", candidates, args, default, reference)
    return candidates[name](*args)


def _pick(layer: Any, signature: str, candidates: dict, example: tuple, default: str, reference: str) -> str:
    if not settings.enabled:
        return reference
    forced = _override(layer, candidates)
    if forced is not None:
        return forced
    if len(candidates) == 1:
        return next(iter(candidates))
    key = f"{backend_key()}|{signature}"
    known = remembered(key)
    if known in candidates:
        return known
    concrete = all(isinstance(d, int) for a in example for d in a.shape)
    if not (settings.measure and getattr(_local, "measuring", 0) and concrete):
        return default if default in candidates else reference
    timings = timed(_forward_backward(candidates, example))
    if not timings:
        return reference
    best = min(timings, key=timings.get)
    log.info("dagjax: %s lowered as %s (%s)", layer.name, best,
             ", ".join(f"{n} {t * 1e3:.2f} ms" for n, t in sorted(timings.items(), key=lambda i: i[1])))
    remember(key, best)
    return best


def _forward_backward(candidates: dict[str, Callable], example: tuple) -> dict[str, Callable[[], Any]]:
    """For each candidate, a run of its forward + backward (for the floating-point arguments; the
    outputs may be any pytree) on arrays shaped as ``example``'s (the first run compiles it; the arrays
    are made once, on the measuring thread, for every candidate).
    """
    arrays: list = []

    def make_args() -> tuple:
        if not arrays:
            rng = np.random.default_rng(0)
            arrays.extend(jax.device_put(rng.standard_normal(a.shape).astype(a.dtype)) for a in example)
        return tuple(arrays)

    floats = tuple(i for i, a in enumerate(example) if jnp.issubdtype(a.dtype, jnp.floating))

    def forward_backward(fn: Callable) -> Callable:
        def loss(*xs: Any) -> Any:
            return sum(jnp.sum(jnp.square(y)) for y in jax.tree_util.tree_leaves(fn(*xs)))

        return jax.grad(loss, argnums=floats) if floats else loss

    return {name: compiled_run(forward_backward(fn), make_args) for name, fn in candidates.items()}


def timed(runs: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Seconds each of ``runs`` takes (``settings.timer`` for each, else a :func:`_race.race` within
    ``max_measure_seconds`` per candidate), timed on a fresh thread so that a trace in progress in
    this one is left alone. A run that raises is left out: a candidate that fails is never chosen,
    and never fails a model.
    """

    def time_all() -> dict[str, float]:
        with measuring():  # a run that traces layers chooses their lowerings as fit's steps would
            if settings.timer is None:
                return race(runs, settings.max_measure_seconds)
            timings = {}
            for name, run in runs.items():
                try:
                    timings[name] = float(settings.timer(name, run))
                except Exception as err:  # noqa: BLE001
                    log.debug("dagjax: %s failed to run (%s)", name, err)
            return timings

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(time_all).result()


def choices(layers: Any) -> dict[str, dict[str, str]]:
    """``{layer name: {signature: lowering}}`` for the layers (nested models' too) that ``fit``,
    ``evaluate`` or ``predict`` traced so far (the last few signatures of each)."""
    found: dict[str, dict[str, str]] = {}
    for layer in layers:
        if getattr(layer, "lowered", None):
            found[layer.name] = dict(layer.lowered)
        inner = getattr(layer, "sublayers", {})
        found.update(choices(inner.values()))
    return found
