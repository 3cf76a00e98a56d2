"""``keras.random`` for Keras-style layers: draws from the step's rng inside a compiled ``call``.

Keras 3 keeps a ``SeedGenerator``'s state in a variable that each draw
advances. In dagjax a layer's ``call`` is part of one pure program, so the
randomness comes from the rng that ``fit`` gives each step: inside a running
``call`` (``layers._keras_scope``) a draw seeded by a ``SeedGenerator`` (or by
nothing) takes the next key of that rng, and a layer holding a
``SeedGenerator`` is given one (``uses_rng``). Where no rng is given
(``predict``, ``training=False`` without ``rng``), draws come from the
generator's own seed: the same numbers on every call, where Keras's would
advance. An int ``seed`` gives the same draws every call, as in Keras.
Outside any ``call`` (eager use) a ``SeedGenerator`` advances a counter.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.layers._keras_scope import innermost_binding


class SeedGenerator:
    """A source of random keys for ``dagjax.random`` functions, as ``keras.random.SeedGenerator``."""

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs: Any) -> None:
        self.seed = int(np.random.SeedSequence().entropy % (2**31)) if seed is None else int(seed)
        self.name = name or "seed_generator"
        self._eager_draws = itertools.count()

    def next(self) -> jax.Array:
        """The next key: from the running call's rng, else from this generator's seed."""
        scope = innermost_binding()
        if scope is not None:
            key = scope.next_random_key()
            return key if key is not None else jax.random.key(self.seed)
        return jax.random.fold_in(jax.random.key(self.seed), next(self._eager_draws))

    def get_config(self) -> dict:
        return {"seed": self.seed, "name": self.name}


_GLOBAL = SeedGenerator(0, "global_seed_generator")


def draw_key(seed: Any) -> jax.Array:
    """The key a ``seed`` argument gives: a generator's next, an int's own, or (None) the running call's."""
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None:
        return _GLOBAL.next()
    if isinstance(seed, (int, np.integer)):
        return jax.random.key(int(seed))
    if isinstance(seed, jax.Array) and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    raise TypeError(f"seed must be a SeedGenerator, an int or None, got {type(seed).__name__}.")


def _dtype(dtype: Any) -> Any:
    return jnp.dtype(dtype or "float32")


def normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
           seed: Any = None) -> jax.Array:
    """Normal draws of ``shape``, as ``keras.random.normal``."""
    return mean + stddev * jax.random.normal(draw_key(seed), tuple(shape), _dtype(dtype))


def uniform(shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None,
            seed: Any = None) -> jax.Array:
    """Uniform draws in ``[minval, maxval)``, as ``keras.random.uniform``."""
    return jax.random.uniform(draw_key(seed), tuple(shape), _dtype(dtype), minval, maxval)


def truncated_normal(shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None,
                     seed: Any = None) -> jax.Array:
    """Normal draws cut at two standard deviations, as ``keras.random.truncated_normal``."""
    return mean + stddev * jax.random.truncated_normal(draw_key(seed), -2.0, 2.0, tuple(shape), _dtype(dtype))


def randint(shape: Any, minval: int, maxval: int, dtype: Any = "int32", seed: Any = None) -> jax.Array:
    """Integers in ``[minval, maxval)``, as ``keras.random.randint``."""
    return jax.random.randint(draw_key(seed), tuple(shape), minval, maxval, jnp.dtype(dtype))


def dropout(inputs: Any, rate: float, noise_shape: Any = None, seed: Any = None) -> jax.Array:
    """Zero each entry with probability ``rate`` and scale the rest by ``1 / (1 - rate)``, as Keras."""
    inputs = jnp.asarray(inputs)
    shape = inputs.shape if noise_shape is None else tuple(
        full if given is None else given for given, full in zip(noise_shape, inputs.shape)
    )
    keep = jax.random.bernoulli(draw_key(seed), 1.0 - rate, shape)
    return jnp.where(keep, inputs / (1.0 - rate), jnp.zeros_like(inputs))


def shuffle(x: Any, axis: int = 0, seed: Any = None) -> jax.Array:
    """``x`` with its entries along ``axis`` in a random order, as ``keras.random.shuffle``."""
    return jax.random.permutation(draw_key(seed), jnp.asarray(x), axis=axis, independent=False)


def categorical(logits: Any, num_samples: int, dtype: Any = "int32", seed: Any = None) -> jax.Array:
    """``num_samples`` class draws per row of ``logits`` (batch, classes), as ``keras.random.categorical``."""
    logits = jnp.asarray(logits)
    draws = jax.random.categorical(draw_key(seed), logits, axis=-1, shape=(num_samples, logits.shape[0]))
    return draws.T.astype(jnp.dtype(dtype))

