"""Each tuner's Optuna sampler, made afresh for every trial from ``(seed, trial number)``.

An Optuna sampler draws from one random stream per process. Two workers
given the same ``seed`` would then draw the same values, and a resumed
search would draw differently from one that ran straight through.
``TrialSeededSampler`` makes the tuner's sampler anew for each trial, seeded
from the tuner's seed and the trial's number: trial 7 of ``seed=0`` draws the
same way in any worker, first run or resumed (model-based samplers still
depend on the trials finished before it, as they should). With ``seed=None``
every trial draws from fresh entropy.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from dagjax.tuners._optuna import optuna, without_experimental_warning

BaseSampler = optuna.samplers.BaseSampler


class TrialSeededSampler(BaseSampler):
    """Delegates every call about a trial to ``make(seed)``, made once per trial number."""

    def __init__(self, make: Callable[[int | None], BaseSampler], seed: int | None) -> None:
        self._make = make
        self._seed = seed
        self._number: int | None = None
        self._sampler: BaseSampler | None = None

    def _for_number(self, number: int) -> BaseSampler:
        if number != self._number or self._sampler is None:
            seed = None if self._seed is None else zlib.crc32(f"{self._seed}/{number}".encode())
            with without_experimental_warning():
                self._sampler = self._make(seed)
            self._number = number
        return self._sampler

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict:
        """The trial's sampler's joint search space."""
        return self._for_number(trial.number).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: dict) -> dict:
        """The trial's sampler's joint draw."""
        return self._for_number(trial.number).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        """The trial's sampler's draw of one parameter."""
        sampler = self._for_number(trial.number)
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Any, trial: Any) -> None:
        """The trial's sampler's set-up."""
        self._for_number(trial.number).before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        """The trial's sampler's wrap-up (BruteForceSampler stops the study there once all is tried)."""
        self._for_number(trial.number).after_trial(study, trial, state, values)


def random_sampler(seed: int | None) -> BaseSampler:
    """RandomSearch and Hyperband: independent uniform draws (log-uniform on log scales)."""
    return TrialSeededSampler(lambda s: optuna.samplers.RandomSampler(seed=s), seed)


def exhaustive_sampler(seed: int | None) -> BaseSampler:
    """GridSearch: every combination of a define-by-run space, each once, in a seeded order."""
    return TrialSeededSampler(lambda s: optuna.samplers.BruteForceSampler(seed=s), seed)


def tpe_sampler(seed: int | None, initial_points: Callable[[], int]) -> BaseSampler:
    """BayesianOptimization: random draws for the first ``initial_points()`` trials, then TPE."""
    return TrialSeededSampler(
        lambda s: optuna.samplers.TPESampler(seed=s, n_startup_trials=initial_points()), seed
    )
