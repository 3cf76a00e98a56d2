"""``HyperParameters``: what ``build(hp)`` asks for, define-by-run, with keras-tuner's names and rules.

A hyperparameter is registered the first time ``build`` asks for it, and its
value is chosen then: by the trial's Optuna draw during a search, by the
values a finished trial recorded when a best model is rebuilt, and by its
default outside any search. keras-tuner's rules, kept:

- Asking again for the same name (under the same conditions) returns the
  value already chosen; asking with a *different* range is an error, since
  the search could not honour both.
- Inside ``conditional_scope(parent, values)`` a hyperparameter is active only
  while ``parent`` holds one of ``values``; an inactive one is still
  registered, returns ``None``, and is never drawn (Optuna sees a search space
  that changes with the parent, which its samplers handle).
- ``values`` holds the active values only; ``get`` of an inactive name is a
  ``ValueError``, of an unknown one a ``KeyError``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from dagjax.tuners._space import KINDS, Boolean, Choice, Condition, Fixed, Float, HyperParameter, Int

Key = tuple[str, tuple[Condition, ...]]


class HyperParameters:
    """The search space ``build(hp)`` declares and the values of one trial.

    >>> hp = HyperParameters()
    >>> hp.Int("units", 16, 128, step=16)
    16
    >>> kind = hp.Choice("kind", ["mlp", "cnn"])
    >>> with hp.conditional_scope("kind", ["cnn"]):
    ...     print(hp.Int("filters", 8, 64))
    None
    >>> hp.values
    {'units': 16, 'kind': 'mlp'}
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self._space: dict[Key, HyperParameter] = {}
        self._conditions: list[Condition] = []
        self._draw: Callable[[HyperParameter], Any] | None = None

    # ------------------------------------------------------------------ declaring hyperparameters
    def Int(
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> int | None:
        """An integer in ``[min_value, max_value]``; ``step`` is added (multiplied under ``"log"``)."""
        hp = Int(name, min_value, max_value, step, sampling, default)
        return self._retrieve(hp, parent_name, parent_values)

    def Float(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> float | None:
        """A float in ``[min_value, max_value]``; ``sampling="log"`` for rates and scales."""
        hp = Float(name, min_value, max_value, step, sampling, default)
        return self._retrieve(hp, parent_name, parent_values)

    def Choice(
        self,
        name: str,
        values: list,
        default: Any = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """One of ``values`` (the first by default)."""
        return self._retrieve(Choice(name, values, default), parent_name, parent_values)

    def Boolean(
        self, name: str, default: bool = False, parent_name: str | None = None, parent_values: Any = None
    ) -> bool | None:
        """``True`` or ``False``."""
        return self._retrieve(Boolean(name, default), parent_name, parent_values)

    def Fixed(self, name: str, value: Any, parent_name: str | None = None, parent_values: Any = None) -> Any:
        """A value that is recorded with the trial but not searched."""
        return self._retrieve(Fixed(name, value), parent_name, parent_values)

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Hyperparameters declared inside are active only while ``parent_name`` is one of ``parent_values``.

        The code inside runs either way; an inactive hyperparameter returns ``None``.
        """
        if not any(name == parent_name for name, _ in self._space):
            raise ValueError(
                f"conditional_scope: the parent hyperparameter {parent_name!r} is not defined yet; "
                f"declare it first, e.g. hp.Choice({parent_name!r}, [...]), then open its scope."
            )
        values = tuple(parent_values) if isinstance(parent_values, (list, tuple)) else (parent_values,)
        self._conditions.append(Condition(parent_name, values))
        try:
            yield
        finally:
            self._conditions.pop()

    # ------------------------------------------------------------------ reading values
    def get(self, name: str) -> Any:
        """The value of ``name`` in this trial."""
        if name in self.values:
            return self.values[name]
        if any(known == name for known, _ in self._space):
            raise ValueError(f"Hyperparameter {name!r} is currently inactive: its conditional scope is off.")
        raise KeyError(f"Hyperparameter {name!r} does not exist; known: {sorted(self.values)}.")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def __repr__(self) -> str:
        return f"HyperParameters({self.values})"

    @property
    def space(self) -> list[HyperParameter]:
        """Every hyperparameter declared so far, in the order they were first asked for."""
        return list(self._space.values())

    # ------------------------------------------------------------------ registering
    def _retrieve(self, hp: HyperParameter, parent_name: str | None, parent_values: Any) -> Any:
        scope = self.conditional_scope(parent_name, parent_values) if parent_name else None
        with scope or contextlib.nullcontext():
            conditions = tuple(self._conditions)
            if any(c.name == hp.name for c in conditions):
                raise ValueError(f"Hyperparameter {hp.name!r} is declared in its own conditional scope.")
            known = self._space.setdefault((hp.name, conditions), hp)
            if known != hp:
                raise ValueError(
                    f"Hyperparameter {hp.name!r} is declared twice with different settings: first {known}, "
                    f"now {hp}. Give each its own name (a resumed search keeps the settings it started "
                    "with: pass overwrite=True to the tuner to start afresh)."
                )
            if not all(c.is_active(self.values) for c in conditions):
                return None
            if hp.name not in self.values:
                self.values[hp.name] = hp.default_value if self._draw is None else self._draw(hp)
            return self.values[hp.name]


Space = list[tuple[Key, HyperParameter]]


def drawing(space: Space, draw: Callable[[HyperParameter], Any]) -> HyperParameters:
    """Fresh ``HyperParameters`` for a trial: ``space`` known already, new values from ``draw``."""
    hp = HyperParameters()
    hp._space.update(space)
    hp._draw = draw
    return hp


def replaying(space: Space, values: dict) -> HyperParameters:
    """``HyperParameters`` holding a finished trial's ``values``, to build its model again."""
    hp = HyperParameters()
    hp._space.update(space)
    hp.values.update(values)
    return hp


def declared(hp: HyperParameters) -> Space:
    """``(name, conditions)`` and kind of each hyperparameter ``hp`` holds, in declaration order."""
    return list(hp._space.items())


def to_records(space: Space) -> list[dict]:
    """The space as JSON records, to keep in the study's database."""
    return [
        {
            "class_name": type(hp).__name__,
            "config": hp.config(),
            "conditions": [[c.name, list(c.values)] for c in conditions],
        }
        for (_, conditions), hp in space
    ]


def from_records(records: list[dict]) -> Space:
    """The space kept by :func:`to_records`."""
    space = []
    for record in records:
        hp = KINDS[record["class_name"]](**record["config"])
        conditions = tuple(Condition(name, tuple(values)) for name, values in record["conditions"])
        space.append(((hp.name, conditions), hp))
    return space
