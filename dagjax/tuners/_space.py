"""The kinds of hyperparameter (keras-tuner's ``Int``, ``Float``, ``Choice``, ``Boolean``, ``Fixed``) and
how each is drawn from an Optuna trial.

Each kind is a frozen record of what ``build`` asked for: two records are the
same hyperparameter exactly when they are equal. ``suggest(trial, exhaustive)``
maps it onto Optuna's ``suggest_*``:

- ``Int``: ``suggest_int`` (``step`` added; ``sampling="log"`` without a step
  draws on a log scale). ``Float``: ``suggest_float`` likewise.
- With ``sampling="log"`` *and* a ``step``, keras-tuner multiplies by the step
  (``Int("batch", 2, 32, step=2, sampling="log")`` is 2, 4, 8, 16, 32), which
  Optuna has no distribution for: those values become a categorical choice.
- ``Choice`` and ``Boolean``: ``suggest_categorical``. ``Fixed``: no draw.
- ``exhaustive`` (grid search): a range with infinitely many values
  (a ``Float`` without a step, a log-scaled ``Int`` without one) is cut into
  10 evenly spaced values on its scale, as keras-tuner's ``GridSearch`` does.

``sampling="reverse_log"`` is keras-tuner's too, but Optuna has no such scale;
it is refused by name rather than drawn some other way.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import math
from dataclasses import dataclass
from typing import Any

_SAMPLINGS = ("linear", "log")
_GRID_POINTS = 10


@dataclass(frozen=True)
class Condition:
    """Active when the hyperparameter ``name`` has one of ``values`` (keras-tuner's ``Parent``)."""

    name: str
    values: tuple

    def is_active(self, values: dict) -> bool:
        """Whether the parent is active and holds one of ``values``."""
        return self.name in values and values[self.name] in self.values


class _Range:
    """What ``Int`` and ``Float`` share: bounds, a step (added, or multiplied under log), a sampling."""

    name: str
    min_value: Any
    max_value: Any
    step: Any
    sampling: str
    default: Any

    def _check(self) -> None:
        kind = type(self).__name__
        if self.sampling not in _SAMPLINGS:
            raise ValueError(
                f"{kind} '{self.name}': sampling must be 'linear' or 'log', got {self.sampling!r}."
            )
        if self.min_value > self.max_value:
            raise ValueError(
                f"{kind} '{self.name}': min_value {self.min_value} is above max_value {self.max_value}."
            )
        if self.sampling == "log" and self.min_value <= 0:
            raise ValueError(
                f"{kind} '{self.name}': sampling='log' needs min_value > 0, got {self.min_value}."
            )
        if self.step is not None and (self.step <= 0 or (self.sampling == "log" and self.step <= 1)):
            need = "above 1 (it multiplies under sampling='log')" if self.sampling == "log" else "positive"
            raise ValueError(f"{kind} '{self.name}': step must be {need}, got {self.step}.")
        if self.default is not None and not self.min_value <= self.default <= self.max_value:
            raise ValueError(
                f"{kind} '{self.name}': default {self.default} is outside "
                f"[{self.min_value}, {self.max_value}]."
            )

    @property
    def default_value(self) -> Any:
        """The value outside a search: ``default``, else ``min_value`` (keras-tuner's rule)."""
        return self.min_value if self.default is None else self.default

    def config(self) -> dict:
        """The arguments it was made with."""
        return dataclasses.asdict(self)

    def suggest(self, trial: Any, exhaustive: bool = False) -> Any:
        """This trial's value: Optuna's draw over the range, or over a list where the range needs one."""
        choices = self._choices(exhaustive)
        if choices is not None:
            return trial.suggest_categorical(self.name, choices)
        return self._suggest_range(trial)

    def _choices(self, exhaustive: bool) -> list | None:
        if self.sampling == "log" and self.step is not None:
            count = int(math.log(self.max_value / self.min_value, self.step) + 1e-9) + 1
            return self._rounded(self.min_value * self.step**k for k in range(count))
        if exhaustive and self._continuous():
            if self.sampling == "log":
                ratio = self.max_value / self.min_value
                points = (self.min_value * ratio ** (k / (_GRID_POINTS - 1)) for k in range(_GRID_POINTS))
            else:
                width = self.max_value - self.min_value
                points = (self.min_value + width * k / (_GRID_POINTS - 1) for k in range(_GRID_POINTS))
            return self._rounded(points)
        return None


@dataclass(frozen=True)
class Int(_Range):
    """An integer in ``[min_value, max_value]`` (both included), as keras-tuner's ``hp.Int``."""

    name: str
    min_value: int
    max_value: int
    step: int | None = None
    sampling: str = "linear"
    default: int | None = None

    def __post_init__(self) -> None:
        for field in ("min_value", "max_value", "step", "default"):
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or int(value) != value):
                raise ValueError(f"Int '{self.name}': {field} must be an integer, got {value!r}.")
            if value is not None:
                object.__setattr__(self, field, int(value))
        if self.step is None and self.sampling == "linear":
            object.__setattr__(self, "step", 1)
        self._check()

    def _continuous(self) -> bool:
        return self.step is None

    def _rounded(self, values: Any) -> list:
        return list(dict.fromkeys(int(round(v)) for v in values))

    def _suggest_range(self, trial: Any) -> int:
        if self.step is None:
            return trial.suggest_int(self.name, self.min_value, self.max_value, log=True)
        top = self.min_value + (self.max_value - self.min_value) // self.step * self.step
        return trial.suggest_int(self.name, self.min_value, top, step=self.step)


@dataclass(frozen=True)
class Float(_Range):
    """A float in ``[min_value, max_value]``, as keras-tuner's ``hp.Float``."""

    name: str
    min_value: float
    max_value: float
    step: float | None = None
    sampling: str = "linear"
    default: float | None = None

    def __post_init__(self) -> None:
        for field in ("min_value", "max_value", "step", "default"):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, float(value))
        self._check()

    def _continuous(self) -> bool:
        return self.step is None

    def _rounded(self, values: Any) -> list:
        return list(dict.fromkeys(float(f"{v:.12g}") for v in values))

    def _suggest_range(self, trial: Any) -> float:
        log = self.sampling == "log"
        if self.step is None:
            return trial.suggest_float(self.name, self.min_value, self.max_value, log=log)
        return trial.suggest_float(self.name, self.min_value, self._top(), step=self.step)

    def _top(self) -> float:
        """The largest ``min_value + k * step`` within range, in decimal as Optuna checks it (no warning)."""
        low, high, step = (decimal.Decimal(str(v)) for v in (self.min_value, self.max_value, self.step))
        return float(low + (high - low) // step * step)


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (ints, floats, strings or booleans, all of one type), as ``hp.Choice``."""

    name: str
    values: tuple
    default: Any = None

    def __post_init__(self) -> None:
        values = tuple(self.values) if isinstance(self.values, (list, tuple)) else (self.values,)
        object.__setattr__(self, "values", values)
        if not values:
            raise ValueError(f"Choice '{self.name}': values must not be empty.")
        kinds = {type(v) for v in values}
        if len(kinds) > 1 or not kinds <= {int, float, str, bool}:
            raise TypeError(
                f"Choice '{self.name}': values must be ints, floats, strings or booleans, all of one type; "
                f"got {list(values)}."
            )
        if self.default is not None and self.default not in values:
            raise ValueError(f"Choice '{self.name}': default {self.default!r} is not among {list(values)}.")

    @property
    def default_value(self) -> Any:
        """``default``, else the first of ``values``."""
        return self.values[0] if self.default is None else self.default

    def config(self) -> dict:
        """The arguments it was made with."""
        return {**dataclasses.asdict(self), "values": list(self.values)}

    def suggest(self, trial: Any, exhaustive: bool = False) -> Any:
        """This trial's value, drawn by Optuna among ``values``."""
        return trial.suggest_categorical(self.name, list(self.values))


@dataclass(frozen=True)
class Boolean:
    """``True`` or ``False``, as ``hp.Boolean``."""

    name: str
    default: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.default, bool):
            raise TypeError(f"Boolean '{self.name}': default must be True or False, got {self.default!r}.")

    @property
    def default_value(self) -> bool:
        """``default``."""
        return self.default

    def config(self) -> dict:
        """The arguments it was made with."""
        return dataclasses.asdict(self)

    def suggest(self, trial: Any, exhaustive: bool = False) -> bool:
        """This trial's value, drawn by Optuna."""
        return trial.suggest_categorical(self.name, [False, True])


@dataclass(frozen=True)
class Fixed:
    """A value that is not searched (any JSON value), as ``hp.Fixed``: recorded with the trial's values."""

    name: str
    value: Any

    def __post_init__(self) -> None:
        try:
            json.dumps(self.value)
        except TypeError:
            raise TypeError(
                f"Fixed '{self.name}': the value must be JSON (numbers, strings, lists, dicts), "
                f"got {type(self.value).__name__}: it is stored with the trial in the study's database."
            ) from None

    @property
    def default_value(self) -> Any:
        """``value``."""
        return self.value

    def config(self) -> dict:
        """The arguments it was made with."""
        return dataclasses.asdict(self)

    def suggest(self, trial: Any, exhaustive: bool = False) -> Any:
        """``value``: nothing is drawn."""
        return self.value


HyperParameter = Int | Float | Choice | Boolean | Fixed
KINDS: dict[str, type] = {kind.__name__: kind for kind in (Int, Float, Choice, Boolean, Fixed)}
