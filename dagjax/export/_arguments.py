"""A loaded export's arguments, checked against its signature: errors name the input, shape and dtype.

Inputs come as ``model.predict`` takes them: a dict by input name, a list in
the model's input order, or one array for a single-input model. A dimension
the signature leaves open (a symbol, such as ``batch``) takes any size, one
size for every input that shares it. A dtype converts where numpy's
``same_kind`` casting allows (float64 data into a float32 input, int64 ids
into an int32 one); anything else (floats into integer ids) is refused, since
converting would change values. The checks read shapes and dtypes only, so
they hold under ``jax.jit`` too.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.export._format import Spec
from dagjax.export._trees import leaf_names


def shape_text(shape: tuple) -> str:
    """``(batch, 3)``: a shape as jax.export writes one, symbols unquoted."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _array(value: Any, what: str) -> Any:
    """``value`` as an array: a numpy or JAX array (a tracer too) as it is, anything else through numpy."""
    if not (hasattr(value, "shape") and hasattr(value, "dtype")):
        value = np.asarray(value)
    if not (jnp.issubdtype(value.dtype, jnp.number) or value.dtype == np.bool_):
        raise TypeError(f"{what} must be an array of numbers, got dtype {value.dtype}.")
    return value


def _cast(value: Any, spec: Spec, what: str) -> Any:
    """``value`` in ``spec``'s dtype, where that keeps its values' kind; else the error naming both."""
    if value.dtype == spec.dtype:
        return value
    if not np.can_cast(value.dtype, spec.dtype, casting="same_kind"):
        raise TypeError(
            f"{what} expects dtype {spec.dtype.name}, got {value.dtype}; converting would change its "
            f"values, so convert it first if that is meant (x.astype('{spec.dtype.name}'))."
        )
    return value.astype(spec.dtype)


def _by_name(inputs: Any, specs: list[Spec], model: str) -> list:
    """``inputs`` (a dict by name, a list in order, or one array) as a list in ``specs``' order."""
    names = [s.name for s in specs]
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - set(names), key=str)
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            what = f"has no input {unknown[0]!r}" if unknown else f"needs input {missing[0]!r}"
            raise ValueError(f"Exported model '{model}' {what}; its inputs are {names}.")
        return [inputs[n] for n in names]
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != len(names):
            raise ValueError(
                f"Exported model '{model}' takes {len(names)} input(s), {names}, got a "
                f"{type(inputs).__name__} of {len(inputs)}; give them in that order or as a dict by name."
            )
        return list(inputs)
    if len(names) != 1:
        raise ValueError(
            f"Exported model '{model}' takes {len(names)} inputs, {names}: give a list in that order or a "
            "dict by name, not one array."
        )
    return [inputs]


def _checked_shape(value: Any, spec: Spec, what: str, sizes: dict) -> None:
    """Check ``value``'s shape against ``spec``; ``sizes``: each symbol's size so far, and whose it was."""
    shape = tuple(value.shape)
    if len(shape) != len(spec.shape) or any(isinstance(e, int) and e != g for e, g in zip(spec.shape, shape)):
        raise ValueError(f"{what} expects shape {shape_text(spec.shape)}, got {shape_text(shape)}.")
    for symbol, size in zip(spec.shape, shape):
        if isinstance(symbol, int):
            continue
        if size == 0:
            raise ValueError(f"{what} has shape {shape_text(shape)}: exported models take no empty arrays.")
        first, where = sizes.setdefault(symbol, (size, spec.name))
        if first != size:
            raise ValueError(
                f"{what} has {size} along {symbol}, input '{where}' {first}: they must agree "
                f"(shapes {shape_text(spec.shape)} share {symbol})."
            )


def checked_inputs(inputs: Any, specs: list[Spec], model: str) -> list:
    """The inputs as arrays in the program's order and dtypes, each checked against its spec."""
    sizes: dict = {}
    checked = []
    for spec, value in zip(specs, _by_name(inputs, specs, model)):
        what = f"Input '{spec.name}' of exported model '{model}'"
        value = _array(value, what)
        _checked_shape(value, spec, what, sizes)
        checked.append(_cast(value, spec, what))
    return checked


def checked_weights(tree: Any, specs: list[Spec], which: str, model: str) -> Any:
    """``tree`` (params or state) with each leaf checked against the spec of the same name, and cast."""
    names = leaf_names(tree)
    expected = {s.name: s for s in specs}
    given = set(names)
    missing = [n for n in expected if n not in given]
    unknown = [n for n in names if n not in expected]
    if missing or unknown:
        detail = f"lacks {missing[:3]}" if missing else f"has {unknown[:3]}, which it does not take"
        raise ValueError(
            f"The {which} given to exported model '{model}' do not match it: the tree {detail}. Give the "
            f"model's own {which} tree (model.{which}), or one of the same structure."
        )
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    cast = []
    for name, leaf in zip(names, leaves):
        what = f"Weight '{which}/{name}' of exported model '{model}'"
        value = _array(leaf, what)
        spec = expected[name]
        if tuple(value.shape) != spec.shape:
            raise ValueError(f"{what} expects shape {shape_text(spec.shape)}, got {shape_text(value.shape)}.")
        cast.append(_cast(value, spec, what))
    return jax.tree_util.tree_unflatten(treedef, cast)
