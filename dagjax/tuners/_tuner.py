"""``Tuner``: keras-tuner's tuner on an Optuna study kept in a database.

The study (``tuner.study``) holds everything a search knows: the trials,
their hyperparameters and scores, which worker ran them, and the search
space seen so far. Files hold only each trial's best weights
(``directory/project_name/trial_<n>/weights.dj``). So a search can stop at
any point and go on in another process, and several processes can run one.
"""

from __future__ import annotations

import gc
import glob
import os
import shutil
from typing import Any

from dagjax import clear_session
from dagjax.model import Model
from dagjax.tuners import _report
from dagjax.tuners._hypermodel import as_hypermodel
from dagjax.tuners._hyperparameters import (
    HyperParameters,
    Key,
    declared,
    from_records,
    replaying,
    to_records,
)
from dagjax.tuners._objective import create_objective
from dagjax.tuners._search import Search
from dagjax.tuners._space import HyperParameter
from dagjax.tuners._trials import (
    HYPERPARAMETERS,
    best_trials,
    claimed,
    direction_name,
    open_study,
    storage_url,
)

_SPACE = "search_space"  # study user attribute: the hyperparameters build has declared, as records
_OBJECTIVE = "objective"  # study user attribute: what the study optimises


class Tuner:
    """Searches ``hypermodel``'s hyperparameters with an Optuna ``sampler`` and ``pruner``.

    The tuners (``RandomSearch``, ``GridSearch``, ``BayesianOptimization``,
    ``Hyperband``) choose these; this class takes any Optuna sampler and pruner.

    Args:
        hypermodel: ``build(hp)`` returning a compiled model, or a ``HyperModel``.
        objective: a log key (``"val_accuracy"``; direction inferred), an
            ``Objective``, a list of them (their sum), or ``None`` when
            ``HyperModel.fit`` returns the value to minimise.
        max_trials: trials to run in all, over every run and worker (``None``: no limit).
        seed: seeds the sampler, per trial (see ``_samplers.py``).
        executions_per_trial: fits per trial, from different initial weights; the
            trial's score is their mean.
        directory, project_name: where the study's SQLite file and the trials'
            weights go: ``directory/project_name``.
        overwrite: start afresh, forgetting a study of the same name.
        max_consecutive_failed_trials: stop the search (raising the last error)
            after this many failures in a row.
        storage: a database URL (``"postgresql://..."``, ``"sqlite:///path"``) or an
            Optuna storage, shared by every process running this search.
        population: trials to ask for at a time and train together, as one compiled
            program per group of one architecture (``_batches.py``; 1: one at a time).
        clear_caches: after each trial (or batch of trials), clear JAX's in-memory
            caches of compiled programs, which keeps memory flat over long searches
            but also drops the programs of other JAX code in the process; ``False``
            leaves them (``_search.py``).
    """

    exhaustive = False  # GridSearch: ranges without a step become 10 values

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = None,
        max_trials: int | None = None,
        seed: int | None = None,
        executions_per_trial: int = 1,
        directory: str | os.PathLike | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        max_consecutive_failed_trials: int = 3,
        storage: Any = None,
        population: int = 1,
        *,
        sampler: Any,
        pruner: Any,
        clear_caches: bool = True,
    ) -> None:
        if isinstance(population, bool) or not isinstance(population, int) or population < 1:
            raise ValueError(
                "population is how many trials train together, an int >= 1 (1: one at a time); "
                f"got {population!r}."
            )
        self.population = population
        self.clear_caches = clear_caches
        self.hypermodel = as_hypermodel(hypermodel)
        self.objective = create_objective(objective)
        self._objective_in_logs = objective is not None
        self.max_trials = max_trials
        self.seed = seed
        self.executions_per_trial = executions_per_trial
        self.max_consecutive_failed_trials = max_consecutive_failed_trials
        self.directory = os.fspath(directory or ".")
        self.project_name = project_name or "untitled_project"
        os.makedirs(self.project_dir, exist_ok=True)
        if overwrite:
            for trial_dir in glob.glob(os.path.join(self.project_dir, "trial_*")):
                shutil.rmtree(trial_dir)
        self.study = open_study(
            self.project_name, storage_url(storage, self.project_dir), self.objective.direction,
            sampler, pruner, overwrite,
        )
        self._check_objective()
        self._space: dict[Key, HyperParameter] = dict(from_records(self.study.user_attrs.get(_SPACE, [])))

    @property
    def project_dir(self) -> str:
        """``directory/project_name``: the default SQLite study and every trial's weights."""
        return os.path.join(self.directory, self.project_name)

    @property
    def remaining_trials(self) -> int | None:
        """Trials still to run before ``max_trials`` is reached (``None`` without a limit)."""
        return None if self.max_trials is None else max(0, self.max_trials - claimed(self.study))

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Run trials: each builds a model, fits it with these arguments and records its score.

        ``verbose``: 1 (default) prints one line per trial, 2 also each fit's
        epoch lines, 0 nothing. Resumes a search stopped before (its finished
        trials count toward ``max_trials``; an interrupted one runs again).
        """
        Search(self, fit_args, dict(fit_kwargs)).run()

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        """The hyperparameters of the ``num_trials`` best trials, best first."""
        trials = best_trials(self.study, num_trials, self.objective.direction)
        return [replaying(self._space_items(), t.user_attrs.get(HYPERPARAMETERS, {})) for t in trials]

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The ``num_models`` best trials' models, best first, each with the weights of its best epoch.

        Each is built again by ``build`` from its trial's hyperparameters (after
        ``dj.clear_session()``, as during the search, so its layers get the same
        names), and loads the weights file the trial saved.
        """
        models = []
        for trial in best_trials(self.study, num_models, self.objective.direction):
            path = self._weights_path(trial.number)
            if not os.path.exists(path):
                raise FileNotFoundError(
                    f"Trial {trial.number}'s weights are not at {path}. Workers on several machines must "
                    "share the tuner's directory as they share the database."
                )
            model = self._build(replaying(self._space_items(), trial.user_attrs.get(HYPERPARAMETERS, {})))
            model.load_weights(path)
            models.append(model)
        return models

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best ``num_trials`` trials: hyperparameters and score."""
        trials = best_trials(self.study, num_trials, self.objective.direction)
        print(_report.results_summary(self.project_dir, self.objective, trials, num_trials))

    def search_space_summary(self, extended: bool = False) -> None:
        """Print every hyperparameter and its settings (before any trial: by building once with defaults).

        ``extended`` is keras-tuner's argument; the summary always shows every setting.
        """
        if not self._space:
            hp = replaying(self._space_items(), {})
            self._build(hp)
            self._learn(hp)
            gc.collect()
        print(_report.search_space_summary(self._space_items()))

    # ------------------------------------------------------------------ for the search
    def _fit_kwargs(self, fit_kwargs: dict) -> dict:
        """The arguments each trial's fit gets (Hyperband sets ``epochs``)."""
        return fit_kwargs

    def _weights_path(self, number: int) -> str:
        return os.path.join(self.project_dir, f"trial_{number:04d}", "weights.dj")

    def _space_items(self) -> list[tuple[Key, HyperParameter]]:
        return list(self._space.items())

    def _build(self, hp: HyperParameters) -> Any:
        """``build(hp)`` on fresh layer names (so a rebuilt model's weights load by name)."""
        clear_session()
        model = self.hypermodel.build(hp)
        if not isinstance(model, Model):
            raise TypeError(f"build(hp) must return a dagjax Model, it returned {type(model).__name__}.")
        return model

    def _learn(self, hp: HyperParameters) -> None:
        """Add what ``hp`` declared to the known space, and keep the space in the study."""
        new = [(key, spec) for key, spec in declared(hp) if key not in self._space]
        if new:
            self._space.update(new)
            self.study.set_user_attr(_SPACE, to_records(self._space_items()))

    def _check_objective(self) -> None:
        """A study optimises one objective: resuming it with another would mix incomparable scores."""
        known = self.study.user_attrs.get(_OBJECTIVE, repr(self.objective))
        made_to = self.study.direction.name.lower()
        if known != repr(self.objective) or made_to != direction_name(self.objective.direction):
            raise ValueError(
                f"The study {self.project_name!r} was searched for {known} ({made_to}), and this tuner asks "
                f"for {self.objective!r}: use another project_name, or overwrite=True to start afresh."
            )
        self.study.set_user_attr(_OBJECTIVE, known)
