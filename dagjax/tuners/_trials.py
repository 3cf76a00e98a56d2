"""The study in its database: opening it, which trials use up ``max_trials``, and re-running lost trials.

Several processes may run one search: each asks Optuna for a trial, and the
database (SQLite by default) is the only thing they share. So everything
here is read from the study, never from a process's memory:

- **The budget.** Every trial counts toward ``max_trials`` (finished,
  failed, pruned, running in some worker, or queued), except a lost trial
  that is run again (its re-run counts instead) and a trial found surplus.
  Two workers can ask for a trial at the same moment; trial numbers are
  handed out in order by the database, so the rule "run only if fewer than
  ``max_trials`` counted trials have a smaller number" lets exactly
  ``max_trials`` run. A surplus trial is closed as failed, marked
  ``surplus``, and counts for nothing.
- **Lost trials.** A trial records its worker (``host:pid``). A running
  trial whose worker on this host is gone (killed, crashed) and a trial
  stopped by Ctrl-C are lost: it is closed as failed, marked, and queued
  again with the same hyperparameters (Optuna's ``failed_trial`` convention,
  as its ``RetryFailedTrialCallback``), up to three times. Workers on other
  hosts are not probed: give an ``optuna.storages.RDBStorage`` with
  ``heartbeat_interval`` for Optuna to fail their stale trials, which are then
  re-run the same way.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

from dagjax.tuners._optuna import optuna, quiet

TrialState = optuna.trial.TrialState
FrozenTrial = optuna.trial.FrozenTrial

# Trial user attributes (shown by optuna-dashboard next to each trial).
WORKER = "worker"  # host:pid of the process that ran it
HYPERPARAMETERS = "hyperparameters"  # every value build(hp) used, Fixed ones included
ERROR = "error"  # why it failed
INTERRUPTED = "interrupted"  # stopped by Ctrl-C: run again on resume
LOST = "lost"  # its worker died while running it: run again
SURPLUS = "surplus"  # asked for after max_trials was reached elsewhere: not run
RETRY_OF = "failed_trial"  # system attribute of a re-run: the first trial it stands for (Optuna's name)
_MAX_RETRIES = 3


def storage_url(storage: Any, project_dir: str) -> Any:
    """``storage`` as given (a URL or an Optuna storage), or the URL of an SQLite file in ``project_dir``."""
    if storage is None:
        return "sqlite:///" + os.path.abspath(os.path.join(project_dir, "study.db"))
    return storage


def _connect(storage: Any) -> Any:
    """An Optuna storage for ``storage``; SQLite writers wait for one another instead of failing."""
    if isinstance(storage, str) and storage.startswith("sqlite:"):
        return optuna.storages.RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 60}})
    return storage


@contextlib.contextmanager
def _opening_lock(storage: Any) -> Iterator[None]:
    """Serialise the opens of one SQLite file: Optuna creates its tables without a lock of its own."""
    url = storage if isinstance(storage, str) else getattr(storage, "url", "")
    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: concurrent first opens may race
        path = ""
    if not path or path == ":memory:":
        yield
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_study(name: str, storage: Any, direction: str, sampler: Any, pruner: Any, overwrite: bool) -> Any:
    """The study ``name`` in ``storage``, created if new, deleted and created afresh if ``overwrite``."""
    with _opening_lock(storage), quiet(optuna.logging.WARNING):
        storage = _connect(storage)
        if overwrite:
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=name, storage=storage)
        return optuna.create_study(
            study_name=name, storage=storage, sampler=sampler, pruner=pruner, load_if_exists=True,
            direction=direction_name(direction),
        )


def direction_name(direction: str) -> str:
    """Optuna's name for an objective's ``"min"`` / ``"max"``."""
    return "maximize" if direction == "max" else "minimize"


# ------------------------------------------------------------------ the budget
def _lost(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was lost (Ctrl-C, or its worker died): its re-run counts in its place."""
    lost = trial.user_attrs.get(INTERRUPTED) or trial.user_attrs.get(LOST)
    return trial.state == TrialState.FAIL and bool(lost)


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that use up ``max_trials``."""
    return [t for t in trials if not t.user_attrs.get(SURPLUS) and not _lost(t)]


def claimed(study: Any) -> int:
    """Counted trials that are finished or running: what ``max_trials`` has been spent on."""
    return sum(t.state != TrialState.WAITING for t in counted(study.get_trials(deepcopy=False)))


def counted_before(study: Any, number: int) -> int:
    """Counted trials numbered below ``number``: those with a better claim on the budget."""
    return sum(t.number < number for t in counted(study.get_trials(deepcopy=False)))


# ------------------------------------------------------------------ lost trials
def this_worker() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(worker: str | None) -> bool:
    """Whether ``worker`` is a process of this host that no longer runs (zombies included)."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False


def _close_lost(study: Any, trial: FrozenTrial) -> bool:
    """Mark a running trial of a dead worker as lost and failed; False if some other worker did first.

    This writes through the study's storage, as ``optuna.storages.fail_stale_trials`` does:
    ``study.tell`` would also run the sampler's ``after_trial`` on a trial this process never ran.
    """
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, LOST, True)
        return storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def _queue_rerun(study: Any, trial: FrozenTrial) -> bool:
    """Queue ``trial`` again, same hyperparameters, unless it was retried ``_MAX_RETRIES`` times already."""
    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > _MAX_RETRIES:
        return False
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k in (HYPERPARAMETERS,)}
    system_attrs = {RETRY_OF: trial.system_attrs.get(RETRY_OF, trial.number), "retry_history": history}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs=user_attrs, system_attrs=system_attrs,
    ))
    return True


def recover(study: Any) -> list[int]:
    """Close the running trials of dead workers on this host, and queue every lost trial again.

    Returns the numbers of the trials queued again.
    """
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.state == TrialState.RUNNING and _gone(trial.user_attrs.get(WORKER)):
            _close_lost(study, trial)
    trials = study.get_trials(deepcopy=False)
    rerun = {t.system_attrs.get("retry_history", [None])[-1] for t in trials}
    queued = []
    for trial in trials:
        if _lost(trial) and trial.number not in rerun and _queue_rerun(study, trial):
            queued.append(trial.number)
    return queued


# ------------------------------------------------------------------ results
def best_trials(study: Any, count: int, direction: str) -> list[FrozenTrial]:
    """The ``count`` best completed trials, best first."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(done, key=lambda t: t.value, reverse=direction == "max")[:count]
