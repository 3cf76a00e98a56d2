"""One ``tuner.search(...)``: Optuna's loop over trials, each one built, fitted, scored and recorded.

The loop is ``study.optimize``, with the objective below (one trial) and a
callback after each trial that prints its line and decides whether to go on:
not once ``max_trials`` are spent (counted in the database, so other workers'
trials count too), nor after ``max_consecutive_failed_trials`` failures in a
row (raised with the last error), nor when the objective is missing from the
logs (the same in every trial: raised at once). GridSearch's sampler stops
the loop itself when every combination has been tried.

Each trial ends with ``dj.clear_session()``, ``jax.clear_caches()`` (unless
the tuner was made with ``clear_caches=False``) and a
garbage collection: a model, its fit session and its compiled programs form
reference cycles that the collector would otherwise free late, and JAX keeps
every compiled program in its in-memory caches, though no later trial runs
them; memory would grow trial after trial (BUILD_NOTES.md, "Hyperparameter
search", has the measurement). Clearing JAX's caches also drops the compiled
programs of any other JAX code in the process: they compile again when next
called.
"""

from __future__ import annotations

import copy
import gc
import math
from typing import TYPE_CHECKING, Any

import jax

from dagjax import clear_session
from dagjax.tuners._batches import Batches
from dagjax.tuners._callbacks import SaveBestEpoch, TrialReporter
from dagjax.tuners._hypermodel import HyperModel
from dagjax.tuners._hyperparameters import HyperParameters, drawing
from dagjax.tuners._objective import MissingObjectiveError
from dagjax.tuners._optuna import optuna, quiet
from dagjax.tuners._population import Data, population_data
from dagjax.tuners._report import trial_line
from dagjax.tuners._trials import (
    ERROR,
    HYPERPARAMETERS,
    INTERRUPTED,
    SURPLUS,
    WORKER,
    TrialState,
    best_trials,
    claimed,
    counted,
    counted_before,
    recover,
    this_worker,
)

if TYPE_CHECKING:
    from dagjax.tuners._tuner import Tuner


_GRID_DONE = "grid_complete"  # study user attribute: GridSearch has tried every combination
_BUDGET_SPENT = "max_trials was reached by other workers"
_GRID_TRIED = "every combination of the grid has been tried"


class _Surplus(Exception):
    """This trial is not to run: the budget, or the grid, is spent."""


class Search:
    """The state of one ``search`` call: its fit arguments, and the failures in a row so far."""

    def __init__(self, tuner: Tuner, fit_args: tuple, fit_kwargs: dict) -> None:
        self.tuner = tuner
        self.verbose = fit_kwargs.pop("verbose", 1)
        self.callbacks = list(fit_kwargs.pop("callbacks", None) or [])
        self.fit_args = fit_args
        self.fit_kwargs = {**tuner._fit_kwargs(fit_kwargs), "verbose": 2 if self.verbose == 2 else 0}
        self.failures = 0
        self.error: Exception | None = None
        self.stop_error: Exception | None = None
        self.stopped = False  # whether this search, not the grid sampler, ended the loop
        self.ended = False  # whether the loop is to end after the trials running now
        self.batched = False  # whether trials run in batches (population > 1), not study.optimize

    def run(self) -> None:
        """Run trials until the budget is spent; re-runs first whatever an interrupted search left."""
        study, max_trials = self.tuner.study, self.tuner.max_trials
        queued = recover(study)
        if self.verbose and queued:
            print(f"Resuming: trial(s) {', '.join(map(str, queued))} will run again.")
        if max_trials is not None and claimed(study) >= max_trials:
            if self.verbose:
                print(f"Search complete: {max_trials} of max_trials={max_trials} trials are done.")
            return
        if self.tuner.exhaustive and study.user_attrs.get(_GRID_DONE):
            if self.verbose:
                print(f"Search complete: {_GRID_TRIED}.")
            return
        together = self._together()
        self.batched = together is not None
        try:
            with quiet():
                if together is None:
                    study.optimize(self.objective, callbacks=[self.after_trial], catch=(Exception,))
                else:
                    Batches(self, together).run()
        except KeyboardInterrupt:
            if self.verbose:
                print("Search interrupted: the unfinished trial will run again when the search resumes.")
            raise
        if self.stop_error is not None:
            raise self.stop_error
        if self.tuner.exhaustive and not self.stopped:
            study.set_user_attr(_GRID_DONE, True)

    # ------------------------------------------------------------------ one trial
    def objective(self, trial: Any) -> float:
        """Optuna's objective: this trial's value, or ``TrialPruned``, or the error that failed it."""
        self.error = None
        try:
            return self._run_trial(trial)
        except (optuna.TrialPruned, _Surplus):
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED, True)
            raise
        except Exception as error:
            self.error = error
            trial.set_user_attr(ERROR, f"{type(error).__name__}: {error}")
            raise
        finally:
            self.let_go()

    def let_go(self) -> None:
        """Free what a trial made: layer names, JAX's compiled programs (no later trial runs them), models."""
        clear_session()
        if self.tuner.clear_caches:
            jax.clear_caches()
        gc.collect()

    def _run_trial(self, trial: Any) -> float:
        hp = self.draw(trial)
        try:
            return self._fit(trial, hp)
        finally:  # what build and fit declared, even if they failed
            self.remember(trial, hp)

    def draw(self, trial: Any) -> HyperParameters:
        """The trial's hyperparameters, drawn as build asks for them (a surplus trial is skipped)."""
        tuner = self.tuner
        if tuner.max_trials is not None and counted_before(tuner.study, trial.number) >= tuner.max_trials:
            self._skip(trial, _BUDGET_SPENT)
        trial.set_user_attr(WORKER, this_worker())
        return drawing(tuner._space_items(), lambda spec: spec.suggest(trial, tuner.exhaustive))

    def remember(self, trial: Any, hp: HyperParameters) -> None:
        """Record what build and fit declared with the trial, and in the known space."""
        trial.set_user_attr(HYPERPARAMETERS, dict(hp.values))
        self.tuner._learn(hp)

    def _together(self) -> Data | None:
        """The data trials train on together, or None: one trial at a time (saying why, when it matters)."""
        tuner = self.tuner
        if tuner.population == 1:
            return None
        data = population_data(self.fit_args, {**self.fit_kwargs, "verbose": 0})
        reasons = {
            "HyperModel.fit is overridden": type(tuner.hypermodel).fit is not HyperModel.fit,
            "executions_per_trial > 1": tuner.executions_per_trial > 1,
            "callbacks are given": bool(self.callbacks),
            "the objective is not a log": not tuner._objective_in_logs,
            "fit gets arguments a population does not take": data is None,
        }
        why = [reason for reason, holds in reasons.items() if holds]
        if why and self.verbose:
            print(f"population={tuner.population}: trials run one at a time, as {'; '.join(why)}.")
        return None if why else data

    def _fit(self, trial: Any, hp: HyperParameters) -> float:
        """Build and fit ``executions_per_trial`` times; the mean of their best epochs' objective."""
        tuner = self.tuner
        saver = SaveBestEpoch(tuner.objective, tuner._weights_path(trial.number))
        reporter = TrialReporter(trial, tuner.objective)
        results = []
        for execution in range(tuner.executions_per_trial):
            model = tuner._build(hp)
            if execution == 0 and tuner.exhaustive:
                self._skip_if_tried(trial)
            if execution:  # each execution starts from weights of its own
                model.params, model.state = model.init(jax.random.key(execution))
            ours = (([reporter] if execution == 0 else []) + [saver]) if tuner._objective_in_logs else []
            callbacks = [*copy.deepcopy(self.callbacks), *ours]
            result = tuner.hypermodel.fit(hp, model, *self.fit_args, callbacks=callbacks, **self.fit_kwargs)
            if saver.best is None:  # a fit of the user's own that ran no callbacks: keep its end state
                model.save_weights(saver.path)
            if reporter.pruned_at is not None:
                raise optuna.TrialPruned(f"pruned at epoch {reporter.pruned_at}")
            results.append(self._score(result))
        return self._record(trial, results)

    def _score(self, result: Any) -> tuple[float, dict]:
        """``(objective value, logs of its best epoch)`` from what ``HyperModel.fit`` returned."""
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            return float(result), {}
        if isinstance(result, dict):
            epochs = [result]
        elif isinstance(getattr(result, "history", None), dict):
            logs = result.history
            epochs = [{k: v[i] for k, v in logs.items()} for i in range(len(next(iter(logs.values()), [])))]
        else:
            raise TypeError(
                "HyperModel.fit must return the History of model.fit, a dict of logs or the objective as a "
                f"number; it returned {type(result).__name__}."
            )
        value, epoch = self.tuner.objective.best_epoch(epochs)
        return value, {**epochs[epoch], "epoch": epoch + 1}

    def _record(self, trial: Any, results: list[tuple[float, dict]]) -> float:
        """The mean over executions; the best execution's logs go with the trial."""
        value = sum(v for v, _ in results) / len(results)
        best = min(results, key=lambda r: -r[0] if self.tuner.objective.direction == "max" else r[0])
        trial.set_user_attr("metrics", {k: float(v) for k, v in best[1].items()})
        if not math.isfinite(value):
            raise ValueError(f"The objective came out {value}: training diverged with these hyperparameters.")
        return value

    def _skip(self, trial: Any, why: str) -> None:
        trial.set_user_attr(SURPLUS, f"not run: {why}")
        raise _Surplus(why)

    def _skip_if_tried(self, trial: Any) -> None:
        """Grid search: stop at a combination already tried (the sampler repeats one once all are)."""
        others = [t for t in counted(self.tuner.study.get_trials(deepcopy=False)) if t.number != trial.number]
        if any(t.params == trial.params and t.state != TrialState.WAITING for t in others):
            self._skip(trial, _GRID_TRIED)

    # ------------------------------------------------------------------ between trials
    def after_trial(self, study: Any, trial: Any) -> None:
        """Print the trial's line; stop when the budget is spent, the grid is done, or failures pile up."""
        if trial.user_attrs.get(SURPLUS):
            self._stop(study, by_search=trial.user_attrs[SURPLUS] != f"not run: {_GRID_TRIED}")
            return
        tuner = self.tuner
        self.failures = self.failures + 1 if trial.state == TrialState.FAIL else 0
        if self.verbose:
            best = next(iter(best_trials(study, 1, tuner.objective.direction)), None)
            print(trial_line(trial, tuner.objective, best, claimed(study), tuner.max_trials))
        if isinstance(self.error, MissingObjectiveError):
            self.stop_error = self.error
        elif self.failures >= tuner.max_consecutive_failed_trials:
            limit, error = tuner.max_consecutive_failed_trials, trial.user_attrs.get(ERROR, "no error")
            self.stop_error = RuntimeError(
                f"Number of consecutive failures exceeded the limit of {limit}. "
                f"The last, trial {trial.number}, failed with {error}"
            )
            self.stop_error.__cause__ = self.error
        if self.stop_error is not None:
            self._stop(study)
            return
        recover(study)
        if tuner.max_trials is not None and claimed(study) >= tuner.max_trials:
            self._stop(study)

    def _stop(self, study: Any, by_search: bool = True) -> None:
        """End the loop after this trial; ``by_search=False``: because the grid is done."""
        self.stopped = by_search
        self.ended = True
        if not self.batched:
            study.stop()
