"""keras-tuner's four tuners, each an Optuna sampler and pruner (BUILD_NOTES.md says why these).

==========================  ===========================  ==========================
tuner                       sampler (seeded per trial)   pruner (``pruner=`` overrides)
==========================  ===========================  ==========================
``RandomSearch``            ``RandomSampler``            ``MedianPruner``
``GridSearch``              ``BruteForceSampler``        ``MedianPruner``
``BayesianOptimization``    ``TPESampler``               ``MedianPruner``
``Hyperband``               ``RandomSampler``            ``HyperbandPruner``
==========================  ===========================  ==========================
"""

from __future__ import annotations

import math
from typing import Any

from dagjax.tuners._optuna import optuna
from dagjax.tuners._samplers import exhaustive_sampler, random_sampler, tpe_sampler
from dagjax.tuners._tuner import Tuner


def _median_pruner(pruner: Any) -> Any:
    """``pruner``, or Optuna's default median rule: stop a trial whose epoch is worse than the median's."""
    return optuna.pruners.MedianPruner() if pruner is None else pruner


class RandomSearch(Tuner):
    """Draws every hyperparameter at random (log-uniformly on log scales), ``max_trials`` times."""

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = None,
        max_trials: int | None = 10,
        seed: int | None = None,
        pruner: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hypermodel, objective, max_trials, seed, sampler=random_sampler(seed),
            pruner=_median_pruner(pruner), **kwargs,
        )


class GridSearch(Tuner):
    """Tries every combination once (a range without a step: 10 evenly spaced values), then stops."""

    exhaustive = True

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = None,
        max_trials: int | None = None,
        seed: int | None = None,
        pruner: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hypermodel, objective, max_trials, seed, sampler=exhaustive_sampler(seed),
            pruner=_median_pruner(pruner), **kwargs,
        )


class BayesianOptimization(Tuner):
    """Random draws for the first ``num_initial_points`` trials, then Optuna's TPE on the results so far.

    ``num_initial_points`` defaults to keras-tuner's: three per hyperparameter
    seen so far (at least two).
    """

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = None,
        max_trials: int | None = 10,
        num_initial_points: int | None = None,
        seed: int | None = None,
        pruner: Any = None,
        **kwargs: Any,
    ) -> None:
        self.num_initial_points = num_initial_points
        super().__init__(
            hypermodel, objective, max_trials, seed, sampler=tpe_sampler(seed, self._initial_points),
            pruner=_median_pruner(pruner), **kwargs,
        )

    def _initial_points(self) -> int:
        if self.num_initial_points is not None:
            return self.num_initial_points
        return max(2, 3 * len(self._space))


class Hyperband(Tuner):
    """Random draws, each trained up to ``max_epochs`` and stopped at Hyperband's rungs when behind.

    Every trial's ``fit`` gets ``epochs=max_epochs``; Optuna's ``HyperbandPruner``
    (``min_resource=1``, ``max_resource=max_epochs``, ``reduction_factor=factor``)
    ends the weaker ones early. ``max_trials`` defaults to the number of models
    keras-tuner's Hyperband would start: one bracket per rung of aggressiveness,
    ``hyperband_iterations`` times.
    """

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = None,
        max_epochs: int = 100,
        factor: int = 3,
        hyperband_iterations: int = 1,
        seed: int | None = None,
        max_trials: int | None = None,
        **kwargs: Any,
    ) -> None:
        if factor < 2:
            raise ValueError(f"Hyperband: factor must be an integer of 2 or more, got {factor}.")
        self.max_epochs = max_epochs
        self.factor = factor
        self.hyperband_iterations = hyperband_iterations
        if max_trials is None:
            max_trials = hyperband_iterations * _models_per_iteration(max_epochs, factor)
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_epochs, reduction_factor=factor
        )
        super().__init__(
            hypermodel, objective, max_trials, seed, sampler=random_sampler(seed), pruner=pruner, **kwargs
        )

    def _fit_kwargs(self, fit_kwargs: dict) -> dict:
        return {**fit_kwargs, "epochs": self.max_epochs}


def _models_per_iteration(max_epochs: int, factor: int) -> int:
    """How many models one iteration of keras-tuner's Hyperband starts (its bracket sizes, summed)."""
    brackets, epochs = 0, max_epochs
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    return sum(math.ceil(end_size / (b + 1) * factor**b) for b in range(brackets))
