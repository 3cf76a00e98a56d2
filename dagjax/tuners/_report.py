"""What a search prints: one line per trial, the results summary and the search space, as text."""

from __future__ import annotations

import math
from typing import Any

from dagjax.tuners._hyperparameters import Key
from dagjax.tuners._objective import Objective
from dagjax.tuners._space import HyperParameter
from dagjax.tuners._trials import ERROR, HYPERPARAMETERS, FrozenTrial, TrialState

_ERROR_WIDTH = 160


def _show(value: Any) -> str:
    """A value as the report prints it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def _values(trial: FrozenTrial) -> str:
    values = trial.user_attrs.get(HYPERPARAMETERS) or trial.params
    return " ".join(f"{name}={_show(value)}" for name, value in values.items())


def _outcome(trial: FrozenTrial, objective: Objective) -> str:
    if trial.state == TrialState.COMPLETE:
        return f"{objective.name} {_show(trial.value)}"
    if trial.state == TrialState.PRUNED:
        step = trial.last_step
        reported = f": {objective.name} {_show(trial.intermediate_values[step])}" if step is not None else ""
        return f"pruned at epoch {step}{reported}"
    error = " ".join(str(trial.user_attrs.get(ERROR, "stopped")).split())
    return "failed: " + (error if len(error) <= _ERROR_WIDTH else error[: _ERROR_WIDTH - 3] + "...")


def trial_line(trial: FrozenTrial, objective: Objective, best: FrozenTrial | None, done: int,
               max_trials: int | None) -> str:
    """``Trial 3  units=64 lr=0.001 | val_accuracy 0.9375 | best 0.9514 (trial 1) | 4/20 | 3.1s``."""
    best_text = f"best {_show(best.value)} (trial {best.number})" if best is not None else "best -"
    seconds = trial.duration.total_seconds() if trial.duration is not None else float("nan")
    budget = f"{done}/{max_trials}" if max_trials is not None else f"{done}"
    return (
        f"Trial {trial.number}  {_values(trial)} | {_outcome(trial, objective)} | {best_text} | "
        f"{budget} | {seconds:.1f}s"
    )


def results_summary(project_dir: str, objective: Objective, trials: list[FrozenTrial], shown: int) -> str:
    """keras-tuner's results summary: the best trials, their hyperparameters and score."""
    lines = ["Results summary", f"Results in {project_dir}", f"Showing {shown} best trials", f"{objective}"]
    for trial in trials:
        lines += ["", f"Trial {trial.number} summary", "Hyperparameters:"]
        values = trial.user_attrs.get(HYPERPARAMETERS, {})
        lines += [f"{name}: {_show(value)}" for name, value in values.items()]
        lines.append(f"Score: {_show(trial.value)}")
    return "\n".join(lines)


def search_space_summary(space: list[tuple[Key, HyperParameter]]) -> str:
    """keras-tuner's search space summary: each hyperparameter, its kind and its settings."""
    lines = ["Search space summary", f"Default search space size: {len(space)}"]
    for (name, conditions), hp in space:
        config = {k: v for k, v in hp.config().items() if k != "name"}
        if conditions:
            config["conditions"] = [f"{c.name} in {list(c.values)}" for c in conditions]
        lines += [f"{name} ({type(hp).__name__})", str(config)]
    return "\n".join(lines)
