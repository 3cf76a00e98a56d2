"""The two callbacks a tuner adds to each trial's ``fit``: report-and-prune, and keep the best epoch."""

from __future__ import annotations

import math
import os
from typing import Any

from dagjax.callbacks import Callback
from dagjax.tuners._objective import Objective


class TrialReporter(Callback):
    """Reports the objective to the Optuna trial after each epoch; stops ``fit`` when the pruner says so.

    The step reported is the number of epochs trained, the resource Optuna's
    pruners (``HyperbandPruner`` above all) count in. A pruned trial keeps
    training nothing more: ``model.stop_training`` ends ``fit`` after this epoch.
    """

    def __init__(self, trial: Any, objective: Objective) -> None:
        super().__init__()
        self.trial = trial
        self.objective = objective
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Report this epoch's objective and ask the pruner whether to go on."""
        self.trial.report(self.objective.get_value(logs or {}), step=epoch + 1)
        if self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True


class SaveBestEpoch(Callback):
    """Saves the weights of the best epoch so far (by the objective) to ``path``, across executions.

    What ``get_best_models`` loads into a model rebuilt from the trial's
    hyperparameters: weights files, written atomically by ``save_weights``, so
    every model loads back, whatever its optimizer.
    """

    def __init__(self, objective: Objective, path: str | os.PathLike) -> None:
        super().__init__()
        self.objective = objective
        self.path = os.fspath(path)
        self.best: float | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Save the weights when this epoch beats every one before it."""
        value = self.objective.get_value(logs or {})
        if self.best is None or math.isnan(self.best) or self.objective.better_than(value, self.best):
            self.best = value
            self.model.save_weights(self.path)
