"""Weight and activity penalties (Keras ``l1``, ``l2``, ``l1_l2``).

A regularizer is a callable ``array -> scalar``; the training loss adds the
penalties of every regularised weight (and activation) to the total.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from dagjax._naming import function_name


class Regularizer:
    """Base of the built-in regularizers: a callable ``array -> scalar`` penalty with a config."""

    def __call__(self, x: jax.Array) -> jax.Array:
        """The scalar penalty for ``x``; subclasses define it."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The instance attributes as constructor arguments, for ``serialize``."""
        return dict(vars(self))


def _in_program(factor: float | jax.Array) -> bool:
    """Whether a factor's term is computed: a Python number when nonzero, a traced factor always."""
    return not isinstance(factor, (int, float)) or factor != 0


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, x: jax.Array, factors: dict | None = None) -> jax.Array:
        """``l1 * sum(|x|) + l2 * sum(x**2)`` as a float32 scalar, a zero term skipped (not traced).

        ``factors`` (``{"l1": ..., "l2": ...}``, traced values) replace the
        constructor's: one program then serves many factors, and a traced
        factor's term is always in it.
        """
        factors = factors or {}
        l1, l2 = factors.get("l1", self.l1), factors.get("l2", self.l2)
        penalty = jnp.zeros((), jnp.float32)
        if _in_program(l1):
            penalty += l1 * jnp.sum(jnp.abs(x))
        if _in_program(l2):
            penalty += l2 * jnp.sum(jnp.square(x))
        return penalty

    def factors(self) -> dict[str, float]:
        """The factors ``__call__`` can take traced, with their values (those its config names)."""
        return self.get_config()


class L1(L1L2):
    """``l1 * sum(|x|)``, with Keras's default factor 0.01."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        """Only ``l1``, as Keras's ``L1`` config (its ``l2`` is always zero)."""
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(x**2)``, with Keras's default factor 0.01."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        """Only ``l2``, as Keras's ``L2`` config (its ``l1`` is always zero)."""
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier: str | Callable | dict | None) -> Callable | None:
    """A regularizer from a Keras name, a config dict, a callable, or ``None``."""
    if isinstance(identifier, type):  # a class, as Keras's get: an instance with its defaults
        return identifier()
    if identifier is None or callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        cls = _BY_NAME.get(identifier.get("class_name"))
        if cls is None:
            name = identifier.get("class_name")
            raise ValueError(f"Unknown regularizer class {name!r}. Valid: L1, L2, L1L2.")
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    anonymous = ""
    if identifier == "<lambda>":
        anonymous = " (an anonymous lambda: give the function a name, or pass it under '<lambda>')"
    raise ValueError(
        f"Unknown regularizer {identifier!r}{anonymous}. Valid names: l1, l2, l1_l2. A function is saved "
        "by its name only, never its code: to load one, pass it in custom_objects={name: function}."
    )


def serialize(reg: Callable | None) -> dict | str | None:
    """``{"class_name", "config"}`` of a regularizer object (as ``get`` reads it back), or ``None``.

    A plain function is recorded by its name only, as initializers, activations
    and Lambda functions are: files never hold code, so loading it needs the
    function in ``custom_objects``. A callable object with no ``get_config``
    (a ``functools.partial``, say) has no name to record and cannot be saved.
    """
    if reg is None:
        return None
    if hasattr(reg, "get_config"):
        return {"class_name": type(reg).__name__, "config": reg.get_config()}
    return function_name(reg, "regularizer")
