"""Raw optax transformations that differ only in numbers share one program, their numbers in the state."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dagjax.population import optimizer_program
from dagjax.training.population._constants import lift

PARAMS = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(3, 2), "b": jnp.ones(2)}
GRADS = jax.tree.map(lambda p: 0.3 * p + 0.1, PARAMS)


def _differing(txs):
    programs = [optimizer_program(tx, PARAMS) for tx in txs]
    assert all(program == programs[0][0] for program, _ in programs)
    names = [n for n in programs[0][1] if any(c[n] != programs[0][1][n] for _, c in programs)]
    return names, [{n: c[n] for n in names} for _, c in programs]


def _two_steps(tx, state):
    for _ in range(2):
        updates, state = tx.update(GRADS, state, PARAMS)
    return updates


def test_lifted_members_step_exactly_as_their_own_transformations_under_vmap():
    frozen = lambda tx: optax.multi_transform({"on": tx, "off": optax.set_to_zero()}, {"w": "on", "b": "off"})
    txs = [frozen(optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(lr, b1=b1)))
           for lr, b1 in [(1e-2, 0.9), (3e-3, 0.5), (1e-3, 0.9)]]
    names, values = _differing(txs)
    assert names  # the learning rates and b1 differ
    shared = lift(txs[0], PARAMS, names)
    states = [shared.init(PARAMS)._replace(hyperparams={n: jnp.float32(v[n]) for n in names}) for v in values]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)
    got = jax.jit(jax.vmap(lambda s: _two_steps(shared, s)))(stacked)
    for i, tx in enumerate(txs):
        want = _two_steps(tx, tx.init(PARAMS))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-6)  # jit vs eager: ulps


def test_other_kinds_or_settings_are_other_programs():
    program = lambda tx: optimizer_program(tx, PARAMS)[0]
    assert program(optax.adam(1e-3)) == program(optax.adam(0.5, b2=0.9))
    assert program(optax.adam(1e-3)) != program(optax.sgd(1e-3))
    assert program(optax.sgd(1e-3)) != program(optax.sgd(1e-3, momentum=0.9))
    assert program(optax.adam(1e-3)) != program(optax.adam(1e-3, nesterov=True))
