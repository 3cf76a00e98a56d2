"""Keras's names (a class's snake_case, numbered layer names: ``dense_1``) and the shared default seed."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable

_counters: defaultdict[str, int] = defaultdict(int)

DEFAULT_SEED = 0  # the seed used where none is given, until set_default_seed changes it
_default_seed = DEFAULT_SEED


def default_seed() -> int:
    """The seed of ``Model.init`` and initializers given no key, and of ``compile`` given no ``seed``."""
    return _default_seed


def set_default_seed(seed: int) -> None:
    """Make ``seed`` the one :func:`default_seed` returns (``dagjax.utils.set_random_seed`` calls this)."""
    global _default_seed
    _default_seed = int(seed)


def to_snake_case(name: str) -> str:
    """Keras's rule: ``BatchNormalization`` -> ``batch_normalization``, ``Conv2D`` -> ``conv2d``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix: str) -> str:
    """The next free auto name for ``prefix`` in this session."""
    count = _counters[prefix]
    _counters[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Restart automatic names from scratch, as ``keras.backend.clear_session``."""
    _counters.clear()


def function_name(fn: Callable, what: str) -> str:
    """The name a model file records for a user's function: files hold names, never code."""
    name = getattr(fn, "__name__", None)
    if isinstance(name, str):
        return name
    raise TypeError(
        f"its {what} {fn!r} has no name, so it cannot be recorded. Model files hold names and numbers, "
        "never code: use a named function (loaded back through custom_objects) or a built-in object."
    )
