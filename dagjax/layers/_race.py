"""Timing equal candidates against each other, with as few runs as the gaps between them allow.

The lowering picker and the fit session's loop probe both ask which of a few
programs computing the same thing runs fastest. :func:`race` answers with the
best time of each: every candidate runs once untimed (it compiles), then the
candidates still in are timed in turns (so a change of the machine's load
falls on all of them alike); from round :data:`MIN_ROUNDS` on, a candidate
:data:`CLEAR_LEAD` times slower than the leader drops out, and the race ends
when one is left, after :data:`MAX_ROUNDS` rounds, or once the time budget is
spent. The first rounds are never skipped: one run of a sub-millisecond
program on a loaded machine says little (an LSTM's two loops measured 2.5x
apart in one run each, 1.1x apart and the other way round in 30). A run
shorter than :data:`WARM_BELOW` is timed right after an untimed one of its
own, as a training loop runs it: timed straight after another candidate, the
same LSTM's scan measured 0.95 ms against 0.6 ms unrolled, though in ``fit``
the scan ran 5-20% faster; warmed, 0.43 against 0.50 ms, as ``fit``. A
candidate that raises drops out and is never chosen.

:func:`compiled_run` makes a candidate whose untimed run only compiles it
(ahead of time), so the race pays for no execution it does not time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import jax

log = logging.getLogger("dagjax")

CLEAR_LEAD = 1.5  # a candidate this many times the leader's best time is out of the race
MIN_ROUNDS = 3  # timed runs per candidate before any drops out (unless the budget is spent first)
WARM_BELOW = 0.01  # a run shorter than this (s) is timed right after an untimed one of its own
MAX_ROUNDS = 20  # timed runs per candidate, at most (short runs: the budget stops long ones sooner)


def race(runs: dict[str, Callable[[], Any]], budget: float) -> dict[str, float]:
    """The best seconds of each of ``runs`` (name -> run once) that did not fail; see the module
    docstring. ``budget``: seconds of timed runs per candidate, after which no new round starts.
    """
    live = {}
    for name, run in runs.items():
        if _attempt(name, run) is not None:
            live[name] = run
    best = dict.fromkeys(live, float("inf"))
    spent = 0.0
    for rounds in range(1, MAX_ROUNDS + 1):
        for name in list(live):
            if best[name] < WARM_BELOW:  # a short run right after another program's pays for the switch
                _attempt(name, live[name])
            took = _attempt(name, live[name])
            if took is None:
                del live[name], best[name]
                continue
            best[name], spent = min(best[name], took), spent + took
        if not live or spent > budget * len(runs):
            break
        if rounds >= MIN_ROUNDS:
            leader = min(best[name] for name in live)
            live = {name: run for name, run in live.items() if best[name] < CLEAR_LEAD * leader}
            if len(live) == 1:
                break
    return best


def _attempt(name: str, run: Callable[[], Any]) -> float | None:
    """Seconds one run of ``run`` took, or None when it raised (logged)."""
    start = time.perf_counter()
    try:
        run()
    except Exception as err:  # noqa: BLE001 -- a candidate that fails is never chosen, never fails a model
        log.debug("dagjax: %s failed to run (%s)", name, err)
        return None
    return time.perf_counter() - start


def compiled_run(fn: Callable, make_args: Callable[[], tuple]) -> Callable[[], Any]:
    """A run of ``jax.jit(fn)(*make_args())`` (waited for) whose first call compiles it and runs
    nothing; the arguments are made then, on the thread that runs it, and reused.
    """
    ready: list = []

    def run() -> Any:
        if not ready:
            args = make_args()
            ready.append((jax.jit(fn).lower(*args).compile(), args))
            return None
        compiled, args = ready[0]
        return jax.block_until_ready(compiled(*args))

    return run
