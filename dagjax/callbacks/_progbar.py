"""A Keras-style progress bar that reads device values only when it prints.

``update`` takes the running logs as they come from the compiled step
(device scalars). They are converted to Python floats only when a line is
drawn, at most every ``interval`` seconds, so the bar never forces a device
sync per step. ``verbose=1`` redraws one line in a terminal (and prints one
line per epoch elsewhere); ``verbose=2`` prints one line per epoch.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

import numpy as np


def _format_value(value: Any) -> str:
    value = float(np.mean(value))  # a vector metric shows its mean, as in Keras
    return f"{value:.4f}" if abs(value) > 1e-3 or not math.isfinite(value) else f"{value:.4e}"


def _format_time_per_unit(seconds: float, unit: str) -> str:
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


def _format_eta(seconds: float) -> str:
    if seconds > 3600:
        return f"{seconds // 3600:.0f}:{(seconds % 3600) // 60:02.0f}:{seconds % 60:02.0f}"
    if seconds > 60:
        return f"{seconds // 60:.0f}:{seconds % 60:02.0f}"
    return f"{seconds:.0f}s"


class Progbar:
    """Progress of ``target`` steps (``None`` when unknown) with the latest log values."""

    def __init__(
        self,
        target: int | None,
        verbose: int = 1,
        interval: float = 0.05,
        unit_name: str = "step",
        width: int = 20,
        stream: TextIO | None = None,
    ) -> None:
        self.target = target
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.width = width
        self.stream = stream if stream is not None else sys.stdout
        self.dynamic = hasattr(self.stream, "isatty") and self.stream.isatty() or "ipykernel" in sys.modules
        self._values: dict[str, Any] = {}
        self._start = time.perf_counter()
        self._first: tuple[float, int] | None = None  # time and count of the first update
        self._last_draw = 0.0
        self._prev_width = 0

    def update(self, current: int, values: Any = None, finalize: bool | None = None) -> None:
        """Record progress up to step ``current`` and, if due, draw the line."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in dict(values or {}).items():
            self._values[name] = value
        now = time.perf_counter()
        if self._first is None and current >= 1:
            self._first = (now, current)
        if self.verbose == 1:
            if self.dynamic and (finalize or now - self._last_draw >= self.interval):
                self._draw_dynamic(current, now, finalize)
            elif not self.dynamic and finalize:
                self.stream.write(self._bar(current) + self._info(current, now, finalize) + "\n")
                self.stream.flush()
        elif self.verbose == 2 and finalize:
            count = f"{current}/{self.target}" if self.target else f"{current}"
            elapsed = f"{now - self._start:.0f}s"
            per_unit = _format_time_per_unit(self._time_per_unit(current, now), self.unit_name)
            self.stream.write(f"{count} - {elapsed} - {per_unit}{self._logs()}\n")
            self.stream.flush()

    def _draw_dynamic(self, current: int, now: float, finalize: bool) -> None:
        line = self._bar(current) + self._info(current, now, finalize)
        padding = " " * max(0, self._prev_width - len(line))
        self.stream.write("\r" + line + padding + ("\n" if finalize else ""))
        self.stream.flush()
        self._prev_width = len(line)
        self._last_draw = now

    def _bar(self, current: int) -> str:
        if not self.target:
            return f"{current:7d}/Unknown"
        digits = int(math.log10(self.target)) + 1
        done = int(self.width * min(current, self.target) / self.target)
        return f"{current:{digits}d}/{self.target} " + "━" * done + "─" * (self.width - done)

    def _info(self, current: int, now: float, finalize: bool) -> str:
        per_unit = self._time_per_unit(current, now)
        if self.target and not finalize:
            info = f" {_format_eta(per_unit * (self.target - current))}"
        else:
            info = f" {now - self._start:.0f}s"
        return info + " " + _format_time_per_unit(per_unit, self.unit_name) + self._logs()

    def _logs(self) -> str:
        return "".join(f" - {name}: {_format_value(value)}" for name, value in self._values.items())

    def _time_per_unit(self, current: int, now: float) -> float:
        """Seconds per step, leaving out the first update (it includes compilation) once there are more."""
        if current <= 0:
            return 0.0
        if self._first is not None and current > self._first[1]:
            return (now - self._first[0]) / (current - self._first[1])
        return (now - self._start) / current
