"""``MonitorCallback``: the "did the monitored log improve?" rule shared by three callbacks.

``EarlyStopping``, ``ModelCheckpoint`` and ``ReduceLROnPlateau`` watch one
log (``monitor``) and ask whether its new value beats the best one so far
by more than ``min_delta``. The rule is Keras 3's, comparison in float32
included, so the same logs give the same decisions. ``mode="auto"``
minimises losses and follows each metric's ``direction`` (Keras's
``_direction``): "up" is maximised, "down" minimised.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from dagjax.callbacks._base import Callback

if TYPE_CHECKING:
    from dagjax.model import Model


def maximises(model: Model, monitor: str, owner: str) -> bool:
    """Whether ``mode="auto"`` should maximise ``monitor``, decided as Keras decides it."""
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss"):
        return False
    for log_name, metric in model.fit_session.metrics() if model.compiled else []:
        if name in (log_name, metric.name):
            if metric.direction is not None:
                return metric.direction == "up"
    raise ValueError(
        f"{owner} callback received monitor={monitor}, but dagjax isn't able to automatically determine "
        "whether that metric should be maximized or minimized. Pass `mode='max'` in order to monitor "
        "based on the highest metric value, or pass `mode='min'` in order to use the lowest value."
    )


class MonitorCallback(Callback):
    """A callback that tracks the best value of the ``monitor`` log."""

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        baseline: float | None = None,
        min_delta: float = 0,
    ) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3
            )
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        """Pick ``np.greater`` or ``np.less``; called at the first epoch end, once the metrics exist."""
        if self.mode == "auto":
            maximise = maximises(self.model, self.monitor, type(self).__name__)
        else:
            maximise = self.mode == "max"
        self.monitor_op = np.greater if maximise else np.less
        if not maximise:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value: float, reference_value: float | None) -> bool:
        """Whether ``monitor_value`` beats ``reference_value`` (None: anything does) by ``min_delta``."""
        if reference_value is None:
            return True
        return bool(self.monitor_op(np.float32(monitor_value - self.min_delta), np.float32(reference_value)))
