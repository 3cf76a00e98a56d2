"""Optuna, imported in one place: a missing install says how to get it, and its chatter is kept in scopes.

Optuna logs a line for every trial and warns when an experimental class is
made; the tuners print their own one-line report instead, so these are
silenced only around the calls that would make them, and put back afterwards.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

try:
    import optuna
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "dagjax.tuners runs its searches on Optuna, which is not installed: pip install 'dagjax[tuning]'"
    ) from error

__all__ = ["optuna", "quiet", "without_experimental_warning"]


@contextlib.contextmanager
def quiet(level: int = optuna.logging.ERROR) -> Iterator[None]:
    """Optuna's own log lines at ``level`` and above only, for the time of the block."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, before))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


@contextlib.contextmanager
def without_experimental_warning() -> Iterator[None]:
    """Make an Optuna object marked experimental (BruteForceSampler) without its ExperimentalWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield
