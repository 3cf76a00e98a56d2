"""The one optimizer a population's members share, with the arguments that differ kept in its state.

Members differ in numbers, not in programs: each numeric argument that varies
lives in the optimizer state (``optax.inject_hyperparams``), so stacking the
members' states stacks their values and one ``vmap``-ped step reads each
member's own. The optimizer may be

- a name or a transformation (``"adam"``, ``dj.optimizers.SGD(momentum=0.9)``):
  a Keras-style optimizer keeps the varying arguments in its state
  (``KerasOptimizer.injecting``); any other optax transformation must have
  been made with ``optax.inject_hyperparams`` and hold them already;
- a factory, called with the first member's values (``optax.sgd``,
  ``dj.optimizers.Adam``, ``lambda learning_rate, b1: optax.adam(learning_rate, b1=b1)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dagjax.training.optimizers import KerasOptimizer, get, injected_names


def shared_optimizer(optimizer: Any, values: dict[str, Any], params: Any) -> optax.GradientTransformation:
    """``optimizer`` with every argument named in ``values`` kept in its state (see the module).

    ``values`` maps each varying argument to its members' values; ``params``
    (abstract ones do) shows what the state holds.
    """
    names = list(values)
    if callable(optimizer) and not isinstance(optimizer, (str, optax.GradientTransformation)):
        return _from_factory(optimizer, {name: float(v[0]) for name, v in values.items()})
    tx = get(optimizer)
    if isinstance(tx, KerasOptimizer):
        return tx.injecting(*names) if names else tx
    held = injected_names(jax.eval_shape(tx.init, params))
    missing = [name for name in names if name not in held]
    if missing:
        raise ValueError(
            f"The optimizer does not keep {missing} in its state, so they cannot differ between members. "
            "Pass a dagjax optimizer (dj.optimizers.Adam(...), 'adam'), a factory such as optax.adam, or "
            f"build it with optax.inject_hyperparams(...)({', '.join(f'{n}=...' for n in missing)})."
        )
    return tx


def _from_factory(factory: Callable[..., Any], first: dict[str, float]) -> optax.GradientTransformation:
    """The factory's optimizer for the first member, its varying arguments kept in its state."""
    probe = factory(**first)
    if isinstance(probe, KerasOptimizer):
        return probe.injecting(*first)
    return optax.inject_hyperparams(factory, hyperparam_dtype=jnp.float32)(**first)
