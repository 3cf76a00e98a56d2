"""A search with ``population > 1``: trials asked for in batches and trained together (``_population``).

The loop asks the study for up to ``population`` trials (never more than the
budget left), builds each, and trains every group of them that can share a
program as one population (``fit_population``), one epoch per call: after
each epoch a member reports its objective to its own trial, saves its weights
when that epoch is its best, and stops (frozen, the others training on) when
its trial's pruner says so. Models that cannot join a population train one at
a time as a sequential search trains them. Each trial is then told its result
and goes through the sequential search's ``after_trial`` (its line, the
failure count, the budget), so both paths record the same things.
"""

from __future__ import annotations

import gc
import math
from typing import TYPE_CHECKING, Any

import jax

from dagjax import clear_session
from dagjax import population as pop
from dagjax.tuners._optuna import optuna
from dagjax.tuners._population import Data, Group, plan, population_of
from dagjax.tuners._trials import ERROR, INTERRUPTED, SURPLUS, TrialState

if TYPE_CHECKING:
    from dagjax.tuners._search import Search


class Batches:
    """The batch loop of one ``search`` call (see the module)."""

    def __init__(self, search: Search, data: Data) -> None:
        self.search = search
        self.tuner = search.tuner
        self.study = search.tuner.study
        self.data = data
        self.open: dict[int, Any] = {}  # trial number -> the asked trial not yet told
        self.populations: dict[tuple, pop.Population] = {}  # Group.program -> population of the last batch
        self.stale = False  # whether this batch compiled programs no later batch runs

    def run(self) -> None:
        """Batches until the budget or the grid is spent, or the search stops."""
        try:
            while not self.search.ended:
                size = self.tuner.population
                left = self.tuner.remaining_trials
                if left is not None:
                    size = min(size, left)
                if size <= 0:
                    break
                self._batch([self.study.ask() for _ in range(size)])
                self._let_go()
        except KeyboardInterrupt:
            for trial in list(self.open.values()):
                trial.set_user_attr(INTERRUPTED, True)
                self._tell(trial, state=TrialState.FAIL)
            raise

    def _let_go(self) -> None:
        """Free the batch's models; JAX's compiled programs too, unless each may serve the next batch.

        A population whose program comes again trains the next batch without
        compiling; clearing JAX's caches would drop its programs. They are
        cleared once a batch ran a sequential trial or left a population out.
        """
        if self.stale:
            self.search.let_go()
        else:
            clear_session()
            gc.collect()

    # ------------------------------------------------------------------ one batch
    def _batch(self, trials: list) -> None:
        self.open.update((t.number, t) for t in trials)
        kept, self.populations = self.populations, {}
        built = []
        for trial in trials:
            made = self._settle(trial, lambda trial=trial: self._build(trial), tell_success=False)
            if made is not None:
                built.append((trial, *made))
        groups, alone = plan([model for _, _, model in built])
        for group in groups:
            if len(group.indices) == 1:
                alone.append(group.indices[0])
            else:
                self._train_together([built[i] for i in group.indices], group, kept.get(group.program))
        self.stale = bool(alone) or any(program not in self.populations for program in kept)
        for index in sorted(alone):
            trial, hp, _ = built[index]
            self._settle(trial, lambda trial=trial, hp=hp: self.search._fit(trial, hp))

    def _build(self, trial: Any) -> tuple:
        """``(hp, model)`` for the trial, its hyperparameters recorded even if build fails."""
        hp = self.search.draw(trial)
        try:
            model = self.tuner._build(hp)
            if self.tuner.exhaustive:
                self.search._skip_if_tried(trial)
        finally:
            self.search.remember(trial, hp)
        return hp, model

    def _train_together(self, members: list, group: Group, known: pop.Population | None) -> None:
        """Train the group's members as one population (``known``'s, if any); tell each trial its result."""
        trials = [trial for trial, _, _ in members]
        try:
            outcomes = self._fit_population([model for _, _, model in members], trials, group, known)
        except Exception as error:
            outcomes = [error] * len(trials)
        for trial, outcome in zip(trials, outcomes):
            self._settle(trial, lambda outcome=outcome, trial=trial: self._outcome(trial, outcome))

    def _fit_population(self, models: list, trials: list, group: Group, known: pop.Population | None) -> list:
        """Each member's ``(value, logs of its best epoch)``, or ``optuna.TrialPruned``."""
        objective, data = self.tuner.objective, self.data
        population, ps = population_of(models, group.hyperparams, known)
        self.populations[group.program] = population
        active = [True] * len(models)
        histories: list[list[dict]] = [[] for _ in models]
        best: list[float | None] = [None] * len(models)
        pruned: list[int | None] = [None] * len(models)

        def after_epoch(epoch: int, logs: list, state: pop.PopulationState) -> list[bool]:
            weights = None  # the members' params and state on the host, fetched once if a member improved
            for i, epoch_logs in enumerate(logs):
                if epoch_logs is None:
                    continue
                histories[i].append(epoch_logs)
                value = objective.get_value(epoch_logs)
                if best[i] is None or math.isnan(best[i]) or objective.better_than(value, best[i]):
                    best[i] = value
                    if weights is None:
                        weights = jax.device_get((state.train.params, state.train.state))
                    self._save(models[i], pop.member(weights, i), trials[i])
                trials[i].report(value, step=epoch + 1)
                if trials[i].should_prune():
                    active[i], pruned[i] = False, epoch + 1
            return active

        pop.fit_population(
            population, data.x, data.y, data.batch_size, data.epochs, shuffle=data.shuffle,
            sample_weight=data.sample_weight, validation_split=data.validation_split,
            validation_data=data.validation_data, on_epoch_end=after_epoch, state=ps,
        )
        return [
            optuna.TrialPruned(f"pruned at epoch {at}") if at is not None else self._best(history)
            for history, at in zip(histories, pruned)
        ]

    def _best(self, history: list[dict]) -> tuple[float, dict]:
        value, epoch = self.tuner.objective.best_epoch(history)
        return value, {**history[epoch], "epoch": epoch + 1}

    def _save(self, model: Any, weights: tuple, trial: Any) -> None:
        """Save one member's ``(params, state)`` (host slices: no program per shape) as its trial's."""
        model.params, model.state = weights
        model.save_weights(self.tuner._weights_path(trial.number))

    def _outcome(self, trial: Any, outcome: Any) -> float:
        """A member's value recorded with its trial, or its error (pruned, failed) raised."""
        if isinstance(outcome, BaseException):
            raise outcome
        return self.search._record(trial, [outcome])

    # ------------------------------------------------------------------ telling the study
    def _settle(self, trial: Any, work: Any, tell_success: bool = True) -> Any:
        """``work()``'s result (told as the trial's value when ``tell_success``); an error fails the trial."""
        self.search.error = None
        try:
            result = work()
        except optuna.TrialPruned:
            self._tell(trial, state=TrialState.PRUNED)
        except Exception as error:
            if not trial.user_attrs.get(SURPLUS):
                self.search.error = error
                trial.set_user_attr(ERROR, f"{type(error).__name__}: {error}")
            self._tell(trial, state=TrialState.FAIL)
        else:
            if tell_success:
                self._tell(trial, values=result)
            return result
        return None

    def _tell(self, trial: Any, **outcome: Any) -> None:
        """Tell the study, then do what the sequential search does after a trial."""
        del self.open[trial.number]
        grid_done = False
        try:
            frozen = self.study.tell(trial, **outcome)
        except RuntimeError:  # the grid sampler stops the study once all is tried (the trial is stored)
            frozen, grid_done = self.study.get_trials(deepcopy=False)[trial.number], True
        self.search.after_trial(self.study, frozen)
        if grid_done:
            self.search._stop(self.study, by_search=False)
