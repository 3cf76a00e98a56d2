"""``HyperModel``: a model family to search over, as keras-tuner's (``build(hp)``, optional ``fit``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagjax.tuners._hyperparameters import HyperParameters


class HyperModel:
    """Subclass and define ``build(hp)``; override ``fit`` to tune what ``fit`` is given (``batch_size``...).

    >>> class MLP(HyperModel):
    ...     def build(self, hp):
    ...         ...                      # a compiled dagjax Model, its sizes from hp
    ...     def fit(self, hp, model, *args, **kwargs):
    ...         return model.fit(*args, batch_size=hp.Choice("batch_size", [32, 64]), **kwargs)
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def build(self, hp: HyperParameters) -> Any:
        """A compiled model whose settings come from ``hp``."""
        raise NotImplementedError(f"{type(self).__name__} must define build(self, hp).")

    def fit(self, hp: HyperParameters, model: Any, *args: Any, **kwargs: Any) -> Any:
        """Train ``model`` (the search's arguments, and its callbacks, in ``args`` / ``kwargs``).

        Returns the ``History`` (the objective is read per epoch), a dict of final
        logs, or a number: the objective value itself.
        """
        return model.fit(*args, **kwargs)


class _FromFunction(HyperModel):
    """A ``build`` function seen as a ``HyperModel``."""

    def __init__(self, build: Callable[[HyperParameters], Any]) -> None:
        super().__init__(name=getattr(build, "__name__", None))
        self._build = build

    def build(self, hp: HyperParameters) -> Any:
        """``build(hp)``."""
        return self._build(hp)


def as_hypermodel(hypermodel: Any) -> HyperModel:
    """A ``HyperModel`` as it is, or a ``build(hp)`` function wrapped as one."""
    if isinstance(hypermodel, HyperModel):
        return hypermodel
    if callable(hypermodel):
        return _FromFunction(hypermodel)
    raise TypeError(
        "The tuner's hypermodel must be a function build(hp) returning a compiled model, or a "
        f"tuners.HyperModel; got {type(hypermodel).__name__}."
    )
