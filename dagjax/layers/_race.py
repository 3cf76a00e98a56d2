"""Timing equal candidates against each other, with as few runs as the gaps between them allow.

The lowering picker and the fit session's loop probe both ask which of a few
programs computing the same thing runs fastest. :func:`race` answers with the
best time of each: every candidate runs once untimed (it compiles), then the
candidates still in are timed in turns (so a change of the machine's load
falls on all of them alike); after each round a candidate :data:`CLEAR_LEAD`
times slower than the leader drops out, and the race ends when one is left,
after :data:`MAX_ROUNDS` rounds, or once the time budget is spent. A candidate
that raises drops out and is never chosen.

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
MAX_ROUNDS = 5  # timed runs per candidate, at most


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
    for _ in range(MAX_ROUNDS):
        for name in list(live):
            took = _attempt(name, live[name])
            if took is None:
                del live[name], best[name]
                continue
            best[name], spent = min(best[name], took), spent + took
        if not live:
            break
        leader = min(best[name] for name in live)
        live = {name: run for name, run in live.items() if best[name] < CLEAR_LEAD * leader}
        if len(live) == 1 or spent > budget * len(runs):
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
