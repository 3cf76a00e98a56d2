"""What a search optimises: a log key and its direction, or a sum of several (keras-tuner's objectives).

``objective="val_accuracy"`` infers the direction as keras-tuner does: ``val_``
and ``weighted_`` prefixes aside, ``loss`` / ``crossentropy`` / ``ce`` (and,
as Keras names per-output losses, ``<output>_loss``) are minimised, ``acc``
is maximised, a metric follows the direction the metric itself declares
(accuracies, AUC, precision, recall: up), and any other known metric or loss
is minimised. A name none of these covers is an error that shows
``Objective(name, direction)``. A list of objectives is their sum, the
maximised ones subtracted (keras-tuner's ``MultiObjective``), minimised.
"""

from __future__ import annotations

import math
from typing import Any

from dagjax import losses, metrics

# Metrics that declare no direction, maximised by keras-tuner (the rest of its list declares "up").
_MAXIMISED_WITHOUT_DIRECTION = ("TruePositives", "TrueNegatives")


class MissingObjectiveError(ValueError):
    """The objective is not among a trial's logs: the same mistake in every trial, so the search stops."""


class Objective:
    """A log key to optimise and its direction, ``"min"`` or ``"max"``."""

    def __init__(self, name: str, direction: str) -> None:
        if direction not in ("min", "max"):
            raise ValueError(f"Objective {name!r}: direction must be 'min' or 'max', got {direction!r}.")
        self.name = name
        self.direction = direction

    def __repr__(self) -> str:
        return f'Objective(name="{self.name}", direction="{self.direction}")'

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Objective) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))

    @property
    def names(self) -> tuple[str, ...]:
        """The log keys it reads."""
        return (self.name,)

    def get_value(self, logs: dict) -> float:
        """Its value in one epoch's ``logs``."""
        _check_present(self.names, logs)
        return float(logs[self.name])

    def better_than(self, a: float, b: float) -> bool:
        """Whether value ``a`` beats value ``b``."""
        return a > b if self.direction == "max" else a < b

    def best_epoch(self, history: list[dict]) -> tuple[float, int]:
        """``(value, epoch index)`` of the best of ``history``'s epochs (NaN epochs lose to any other)."""
        best = None
        for epoch, logs in enumerate(history):
            value = self.get_value(logs)
            if best is None or math.isnan(best[0]) or self.better_than(value, best[0]):
                best = (value, epoch)
        if best is None:
            raise MissingObjectiveError(f"The trial trained no epoch, so it has no {self.name!r} to report.")
        return best


class MultiObjective(Objective):
    """Several objectives as one, minimised: the sum of those minimised minus those maximised."""

    def __init__(self, objectives: list[Objective]) -> None:
        super().__init__("multi_objective", "min")
        self.objectives = list(objectives)

    def __repr__(self) -> str:
        return f"MultiObjective({self.objectives})"

    @property
    def names(self) -> tuple[str, ...]:
        """The log keys it reads."""
        return tuple(o.name for o in self.objectives)

    def get_value(self, logs: dict) -> float:
        """The signed sum of its objectives in ``logs``."""
        _check_present(self.names, logs)
        return sum(o.get_value(logs) * (1 if o.direction == "min" else -1) for o in self.objectives)


def _check_present(names: tuple[str, ...], logs: dict) -> None:
    missing = [name for name in names if name not in logs]
    if not missing:
        return
    hint = "Pass one of these as objective=, or Objective(name, direction) for a log of your own."
    if any(name.startswith("val_") for name in missing) and not any(k.startswith("val_") for k in logs):
        hint = "Validation logs need validation_split= or validation_data= in search(...)."
    if "default_objective" in missing:
        hint = "With objective=None, HyperModel.fit must return the objective as a number; or name a log."
    raise MissingObjectiveError(
        f"The objective {', '.join(repr(n) for n in missing)} is not among the trial's logs, which are: "
        f"{', '.join(sorted(logs)) or 'none'}. {hint}"
    )


def infer_direction(name: str) -> str | None:
    """``"min"`` or ``"max"`` for a log key, as keras-tuner infers it; ``None`` where it cannot tell."""
    name = name.removeprefix("val_").removeprefix("weighted_")
    if name in ("loss", "crossentropy", "ce") or name.endswith("_loss"):
        return "min"
    if name in ("acc", "accuracy"):
        return "max"
    try:
        metric = metrics.get(name)
    except ValueError:
        try:
            losses.get(name)
        except ValueError:
            return None
        return "min"
    if metric.direction is not None:
        return "max" if metric.direction == "up" else "min"
    return "max" if type(metric).__name__ in _MAXIMISED_WITHOUT_DIRECTION else "min"


def create_objective(objective: Any) -> Objective:
    """An ``Objective`` from a log key, an ``Objective``, a list of either, or ``None``.

    ``None`` stands for the number ``HyperModel.fit`` returns, minimised (keras-tuner's default).
    """
    if objective is None:
        return Objective("default_objective", "min")
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, (list, tuple)):
        return MultiObjective([create_objective(o) for o in objective])
    if isinstance(objective, str):
        direction = infer_direction(objective)
        if direction is None:
            raise ValueError(
                f"Could not infer whether to minimise or maximise the objective {objective!r}: give it as "
                f'tuners.Objective("{objective}", direction="min") (or direction="max").'
            )
        return Objective(objective, direction)
    raise TypeError(
        f"objective must be a log key, a tuners.Objective or a list of them, got {type(objective).__name__}."
    )
