"""Dtype policies: the dtype a layer computes in and the dtype its weights are kept in (Keras 3's).

A policy is named by a dtype (``"float32"``: both dtypes the same) or by
``"mixed_float16"`` / ``"mixed_bfloat16"``: compute in half precision, keep
the weights (and so the optimizer state) in float32. Each layer takes the
policy given as its ``dtype=`` argument, or the global one when it is made
(as Keras: a layer keeps the policy it was built with, whatever the global
policy does afterwards). The global policy is float32 until
:func:`set_global_policy` changes it: an explicit act of the user, never a
side effect of importing or compiling.

>>> set_global_policy("mixed_bfloat16")
>>> global_policy()
<DTypePolicy "mixed_bfloat16">
>>> set_global_policy("float32")
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

_MIXED = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def _dtype_name(name: str) -> str:
    """A dtype's canonical name (``"float32"``), or a ValueError in Keras's words."""
    try:
        return jnp.dtype(name).name
    except TypeError:
        raise ValueError(
            f"Cannot convert '{name}' to a mixed precision DTypePolicy. Valid policies include "
            "'mixed_float16', 'mixed_bfloat16', and the name of any float dtype such as 'float32'."
        ) from None


class DTypePolicy:
    """A layer's compute dtype and variable dtype, named as Keras names them (``"mixed_bfloat16"``, ...)."""

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            name = global_policy().name
        if not isinstance(name, str):
            raise TypeError(
                f"'name' must be a string, such as 'mixed_float16'. Received: name={name!r} "
                f"(of type {type(name).__name__})"
            )
        self._name = name
        if name in _MIXED:
            self._compute_dtype, self._variable_dtype = _MIXED[name], "float32"
        else:
            self._compute_dtype = self._variable_dtype = _dtype_name(name)

    @property
    def name(self) -> str:
        """The policy's name: ``"float32"``, ``"mixed_float16"``, ``"mixed_bfloat16"``, ..."""
        return self._name

    @property
    def compute_dtype(self) -> str:
        """The dtype a layer's inputs are cast to and its computation runs in."""
        return self._compute_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype a layer's weights are made and kept in (the optimizer's state follows them)."""
        return self._variable_dtype

    def get_config(self) -> dict:
        """``{"name": ...}``, as Keras's."""
        return {"name": self._name}

    @classmethod
    def from_config(cls, config: dict) -> DTypePolicy:
        """The policy ``get_config()`` describes."""
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DTypePolicy) and self._name == other._name

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self._name}">'


_global: DTypePolicy | None = None  # None: float32, until the user sets one


def set_global_policy(policy: str | DTypePolicy) -> None:
    """Make ``policy`` (a name or a :class:`DTypePolicy`) the one layers made from now on take by default."""
    global _global
    if isinstance(policy, str):
        policy = DTypePolicy(policy)
    if not isinstance(policy, DTypePolicy):
        raise ValueError(
            "Invalid `policy` argument. Expected the string name of a policy (such as 'mixed_float16') "
            f"or a `DTypePolicy` instance. Received: policy={policy!r} (of type {type(policy).__name__})"
        )
    _global = policy


def global_policy() -> DTypePolicy:
    """The policy layers made now take when given no ``dtype`` (float32 unless set)."""
    return _global if _global is not None else DTypePolicy("float32")


def get(identifier: Any) -> DTypePolicy:
    """A :class:`DTypePolicy` from what a layer's ``dtype=`` takes.

    ``None`` (the global policy), a policy, its name, a dtype (``np.float16``,
    ``jnp.bfloat16``), or its config as a file holds it: dagjax's and Keras 3's
    ``{"class_name": "DTypePolicy", "config": {"name": ...}}``.
    """
    if identifier is None:
        return global_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):
        if identifier.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy") or not isinstance(
            identifier.get("config"), dict
        ):
            raise ValueError(
                f"Cannot read dtype policy {identifier!r:.200}: expected "
                "{'class_name': 'DTypePolicy', 'config': {'name': ...}} (quantized policies are not read)."
            )
        return DTypePolicy.from_config(identifier["config"])
    if isinstance(identifier, str):
        return DTypePolicy(identifier)
    try:
        return DTypePolicy(np.dtype(identifier).name)
    except TypeError:
        raise TypeError(
            f"dtype must be a dtype policy, its name ('mixed_bfloat16', 'float32', ...) or a dtype, "
            f"got {identifier!r}."
        ) from None


def serialize(policy: DTypePolicy) -> dict:
    """``{"class_name": "DTypePolicy", "config": {"name": ...}}``: a layer config's ``dtype`` (Keras 3's)."""
    return {"class_name": "DTypePolicy", "config": policy.get_config()}
