"""Learning-rate callbacks: ``ReduceLROnPlateau`` and ``LearningRateScheduler``.

The learning rate lives in the optimizer state (see :mod:`dagjax.optimizers`),
so these callbacks change the rate in the optimizer state between epochs and the compiled
step runs on with the new rate, with no recompile. Both add the rate in use
to the epoch's logs as ``learning_rate``, as Keras does.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from dagjax.callbacks._base import Callback
from dagjax.callbacks._monitor import MonitorCallback

if TYPE_CHECKING:
    from dagjax.model import Model


def current_learning_rate(model: Model) -> float:
    """The learning rate the next step uses, as a Python float."""
    rate = model.fit_session.get_learning_rate()
    if rate is None:
        raise ValueError(
            f"Model '{model.name}' has an optimizer without an injected learning_rate, so callbacks cannot "
            "read or change it. Compile with a dagjax optimizer such as dagjax.optimizers.Adam(), or "
            "with optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)."
        )
    return float(rate)


def _set_rate(model: Model, value: float) -> None:
    model.fit_session.set_learning_rate(value)


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` once ``monitor`` has not improved for ``patience`` epochs.

    Keras 3's rule: an improvement beats the best value by more than
    ``min_delta``; after a reduction, ``cooldown`` epochs pass before waiting
    starts again; the rate never goes below ``min_lr``.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Reset the best value, wait and cooldown counts, so each ``fit`` starts afresh."""
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        """Whether a reduction happened less than ``cooldown`` epochs ago."""
        return self.cooldown_counter > 0

    def _reduce(self, epoch: int) -> bool:
        old = current_learning_rate(self.model)
        if not old > np.float32(self.min_lr):
            return False
        new = max(old * self.factor, self.min_lr)
        _set_rate(self.model, new)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
        return True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Log ``learning_rate``; reduce it once ``monitor`` has not improved for ``patience`` epochs."""
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = {} if logs is None else logs
        logs["learning_rate"] = current_learning_rate(self.model)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs)}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0


def _takes_rate(schedule: Callable) -> bool:
    """Whether ``schedule`` takes ``(epoch, lr)`` (Keras's current form) rather than ``(epoch)``."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(0, 0.0)
    except TypeError:
        return False
    return True


class LearningRateScheduler(Callback):
    """At each epoch start, set the learning rate to ``schedule(epoch, lr)`` (or ``schedule(epoch)``).

    >>> LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * 0.9)  # doctest: +SKIP
    """

    def __init__(self, schedule: Callable, verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose
        self._takes_rate = _takes_rate(schedule)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Set the rate to ``schedule``'s value for this epoch (a float, else ValueError)."""
        if self._takes_rate:
            rate = self.schedule(epoch, current_learning_rate(self.model))
        else:
            rate = self.schedule(epoch)
        if not isinstance(rate, (float, np.float32, np.float64)):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {rate!r}")
        _set_rate(self.model, rate)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {rate}.")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Add the rate in use to the epoch's logs as ``learning_rate``, as Keras."""
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.model)
