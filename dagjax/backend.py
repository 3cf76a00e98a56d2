"""Keras's ``keras.backend`` questions, answered for dagjax (always JAX, channels-last, float32).

>>> from dagjax import backend
>>> backend.standardize_dtype(int), backend.image_data_format()
('int32', 'channels_last')

The setters (``set_floatx``, ``set_image_data_format``, ``set_epsilon``) are left out on
purpose: they change the whole process, and dagjax's layers take dtypes and data formats as
arguments instead.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from dagjax._graph import SymbolicTensor as KerasTensor  # noqa: F401 - Keras's backend exports it too
from dagjax._graph import is_symbolic
from dagjax._naming import clear_session as clear_session

# Python types as Keras's JAX backend reads them (its ``PYTHON_DTYPES_MAP`` with x64 off).
_PYTHON_TYPES = {bool: "bool", int: "int32", float: "float32", str: "string"}


def backend() -> str:
    """The backend's name, as Keras's: dagjax always runs on JAX."""
    return "jax"


def floatx() -> str:
    """The default float dtype: layers and Inputs are float32 unless told otherwise."""
    return "float32"


def epsilon() -> float:
    """Keras's fuzz factor, used by its losses and metrics (and dagjax's, which match them)."""
    return 1e-7


def image_data_format() -> str:
    """Image layers are channels-last, as Keras's default."""
    return "channels_last"


def standardize_dtype(dtype: Any = None) -> str:
    """A dtype's name (``"float32"``), from a name, a numpy/JAX dtype or scalar type, or a Python type."""
    if dtype is None:
        return floatx()
    if dtype in _PYTHON_TYPES:
        return _PYTHON_TYPES[dtype]
    if dtype == "string":
        return "string"
    return jnp.dtype(dtype).name


def is_float_dtype(dtype: Any) -> bool:
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def is_int_dtype(dtype: Any) -> bool:
    return standardize_dtype(dtype).startswith(("int", "uint"))


def is_keras_tensor(x: Any) -> bool:
    """Whether ``x`` is a symbolic tensor (an ``Input`` or a layer call's output)."""
    return is_symbolic(x)
