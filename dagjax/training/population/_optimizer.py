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
  ``dj.optimizers.Adam``, ``lambda learning_rate, b1: optax.adam(learning_rate, b1=b1)``);
- one transformation per member (``[optax.adam(1e-3), optax.adam(3e-3)]``)
  that differ only in numbers: the literals that differ are lifted into the
  state (``_constants``), named ``constant_<position>``.

``wrap`` (the model's ``trainable_only``) is applied before lifting: the
literals are read in the program the train step runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

from dagjax.training.optimizers import KerasOptimizer, get, injected_names
from dagjax.training.population._constants import PREFIX, lift, optimizer_program

Wrap = Callable[[optax.GradientTransformation], optax.GradientTransformation]


def per_member_constants(optimizers: Sequence[Any], params: Any, wrap: Wrap) -> tuple[Any, dict[str, list]]:
    """``(first optimizer, {constant name: members' values})`` of one transformation per member.

    Refused, naming the member, where one is another program than the first's (not only other numbers).
    """
    if not optimizers:
        raise ValueError("optimizer: an empty list; give one optimizer per member, or one for all.")
    programs = [optimizer_program(wrap(get(tx)), params) for tx in optimizers]
    for i, (program, _) in enumerate(programs):
        if program != programs[0][0]:
            raise ValueError(
                f"Member {i}'s optimizer ({optimizers[i]!r}) is another program than member 0's "
                f"({optimizers[0]!r}), not the same one with other numbers: members of one population "
                "must share their optimizer's kind and settings and may differ only in numeric arguments."
            )
    columns = {name: [constants[name] for _, constants in programs] for name in programs[0][1]}
    return optimizers[0], {name: vs for name, vs in columns.items() if any(v != vs[0] for v in vs)}


def shared_optimizer(
    optimizer: Any, values: dict[str, Any], params: Any, wrap: Wrap = lambda tx: tx
) -> optax.GradientTransformation:
    """``optimizer`` with every argument in ``values`` kept in its state, ``wrap`` applied (see the module).

    ``values`` maps each varying argument to its members' values; ``params``
    (abstract ones do) shows what the state holds.
    """
    names = list(values)
    if names and all(name.startswith(PREFIX) for name in names):
        return lift(wrap(get(optimizer)), params, names)
    if callable(optimizer) and not isinstance(optimizer, (str, optax.GradientTransformation)):
        return wrap(_from_factory(optimizer, {name: float(v[0]) for name, v in values.items()}))
    tx = get(optimizer)
    if isinstance(tx, KerasOptimizer):
        return wrap(tx.injecting(*names) if names else tx)
    held = injected_names(jax.eval_shape(tx.init, params))
    missing = [name for name in names if name not in held]
    if missing:
        raise ValueError(
            f"The optimizer does not keep {missing} in its state, so they cannot differ between members. "
            "Pass a dagjax optimizer (dj.optimizers.Adam(...), 'adam'), a factory such as optax.adam, or "
            f"build it with optax.inject_hyperparams(...)({', '.join(f'{n}=...' for n in missing)}), "
            "or give one optimizer per member ([optax.adam(1e-3), optax.adam(3e-3)])."
        )
    return wrap(tx)


def _from_factory(factory: Callable[..., Any], first: dict[str, float]) -> optax.GradientTransformation:
    """The factory's optimizer for the first member, its varying arguments kept in its state."""
    probe = factory(**first)
    if isinstance(probe, KerasOptimizer):
        return probe.injecting(*first)
    return optax.inject_hyperparams(factory, hyperparam_dtype=jnp.float32)(**first)
