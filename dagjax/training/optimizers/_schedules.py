"""Keras's learning-rate schedules: callables ``step -> learning rate``, pure and jit-safe.

Pass one as ``learning_rate=`` to any dagjax optimizer: optax calls it with
the number of steps already taken (0 for the first), as Keras calls its
schedules with ``optimizer.iterations``. Each computes Keras's formula in
float32, and has Keras's ``get_config`` / ``from_config``, so a model file
records an optimizer that follows one.

optax's schedule functions are used where they compute Keras's formula:
``polynomial_schedule`` (PolynomialDecay without ``cycle``) and
``cosine_decay_schedule`` (CosineDecay's decay). The others differ from Keras
somewhere (optax's ``exponential_decay`` is constant when ``decay_rate=0``,
its ``piecewise_constant_schedule`` multiplies scales, its ``sgdr_schedule``
is a list of warmup-cosine pieces, it has no inverse-time decay), so they are
written out here.

>>> schedule = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
>>> schedule(20)
Array(0.025, dtype=float32)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax


def _float(step: Any) -> jax.Array:
    """The step as Keras computes with it: float32."""
    return jnp.asarray(step, jnp.float32)


def _check_steps(name: str, steps: Any) -> None:
    if steps <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={steps}")


class LearningRateSchedule:
    """Base class: ``__call__(step) -> learning rate`` with jnp (it runs traced), and ``get_config``.

    Subclass it for a schedule of your own, as in Keras; ``from_config`` calls
    the constructor with the config. ``get_config`` returns the attributes
    that ``ARGUMENTS`` names (the constructor's arguments, kept under their names).
    """

    ARGUMENTS: tuple[str, ...] = ()

    def __call__(self, step: Any) -> jax.Array:
        raise NotImplementedError(
            f"Learning rate schedule '{type(self).__name__}' must override `__call__(self, step)`."
        )

    def get_config(self) -> dict:
        """The constructor's arguments, as Keras's."""
        if not self.ARGUMENTS:
            raise NotImplementedError(
                f"Learning rate schedule '{type(self).__name__}' must override `get_config` (or list its "
                "constructor's arguments in ARGUMENTS)."
            )
        return {name: getattr(self, name) for name in self.ARGUMENTS}

    @classmethod
    def from_config(cls, config: dict) -> LearningRateSchedule:
        """The schedule ``config`` describes."""
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``, floored exponent if ``staircase``."""

    ARGUMENTS = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ) -> None:
        _check_steps("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step: Any) -> jax.Array:
        p = _float(step) / jnp.float32(self.decay_steps)
        if self.staircase:
            p = jnp.floor(p)
        return jnp.float32(self.initial_learning_rate) * jnp.power(jnp.float32(self.decay_rate), p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` where ``boundaries[i-1] < step <= boundaries[i]``; ``values[0]`` up to the first."""

    ARGUMENTS = ("boundaries", "values", "name")

    def __init__(self, boundaries: list, values: list, name: str = "PiecewiseConstant") -> None:
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. Received: "
                f"boundaries={boundaries} of length {len(boundaries)}, "
                f"and values={values} of length {len(values)}."
            )
        self.boundaries = list(boundaries)
        self.values = list(values)
        self.name = name

    def __call__(self, step: Any) -> jax.Array:
        passed = jnp.sum(_float(step) > jnp.asarray(self.boundaries, jnp.float32))
        return jnp.asarray(self.values, jnp.float32)[passed]


class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` as ``(1 - step / decay_steps) ** power``.

    The step stops at ``decay_steps``; with ``cycle`` the decay restarts over
    ``decay_steps`` times the first multiple of it at or past the step.
    """

    ARGUMENTS = ("initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ) -> None:
        _check_steps("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name
        start, end = jnp.float32(initial_learning_rate), jnp.float32(end_learning_rate)
        self._decay = optax.polynomial_schedule(start, end, jnp.float32(power), decay_steps)

    def __call__(self, step: Any) -> jax.Array:
        if not self.cycle:
            return self._decay(_float(step))
        step, period = _float(step), jnp.float32(self.decay_steps)
        # ceil(step / period) as -floor(-step / period): jnp's floor division is exact, a quotient rounds
        decay_steps = period * jnp.where(step == 0, 1.0, -jnp.floor_divide(-step, period))
        start, end = jnp.float32(self.initial_learning_rate), jnp.float32(self.end_learning_rate)
        return (start - end) * jnp.power(1 - step / decay_steps, jnp.float32(self.power)) + end


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``, floored ratio if ``staircase``."""

    ARGUMENTS = ("initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "InverseTimeDecay",
    ) -> None:
        _check_steps("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name

    def __call__(self, step: Any) -> jax.Array:
        p = _float(step) / jnp.float32(self.decay_steps)
        if self.staircase:
            p = jnp.floor(p)
        return jnp.float32(self.initial_learning_rate) / (1 + jnp.float32(self.decay_rate) * p)


class CosineDecay(LearningRateSchedule):
    """A half cosine from the rate down to ``alpha`` times it over ``decay_steps``, after an optional warmup.

    With ``warmup_target`` the rate first goes linearly from
    ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``,
    then decays from ``warmup_target``; without, it decays from
    ``initial_learning_rate`` at once.
    """

    ARGUMENTS = ("initial_learning_rate", "decay_steps", "alpha", "name", "warmup_target", "warmup_steps")

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        _check_steps("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps
        start = initial_learning_rate if warmup_target is None else warmup_target
        self._decay = optax.cosine_decay_schedule(jnp.float32(start), float(decay_steps), jnp.float32(alpha))

    def __call__(self, step: Any) -> jax.Array:
        step = _float(step)
        if self.warmup_target is None:
            return self._decay(step)
        warmup_steps = jnp.float32(self.warmup_steps)
        step = jnp.minimum(step, jnp.float32(self.decay_steps) + warmup_steps)
        initial = jnp.float32(self.initial_learning_rate)
        warmup = (jnp.float32(self.warmup_target) - initial) * (step / warmup_steps) + initial
        return jnp.where(step < warmup_steps, warmup, self._decay(step - warmup_steps))


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay over ``first_decay_steps``, then warm restarts (SGDR).

    Each period is ``t_mul`` times longer than the last and starts at
    ``m_mul`` times the last one's rate; each decays to ``alpha`` times its start.
    """

    ARGUMENTS = ("initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha", "name")

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ) -> None:
        _check_steps("first_decay_steps", first_decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self.t_mul = t_mul
        self.m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def _period(self, fraction: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(restarts so far, fraction of the current period done)`` from the fraction of the first."""
        if self.t_mul == 1.0:
            restarts = jnp.floor(fraction)
            return restarts, fraction - restarts
        t_mul = jnp.float32(self.t_mul)
        restarts = jnp.floor(jnp.log(1.0 - fraction * (1.0 - t_mul)) / jnp.log(t_mul))
        before = (1.0 - jnp.power(t_mul, restarts)) / (1.0 - t_mul)
        return restarts, (fraction - before) / jnp.power(t_mul, restarts)

    def __call__(self, step: Any) -> jax.Array:
        restarts, fraction = self._period(_float(step) / jnp.float32(self.first_decay_steps))
        decay = jnp.power(jnp.float32(self.m_mul), restarts)
        cosine = 0.5 * decay * (1.0 + jnp.cos(jnp.float32(math.pi) * fraction))
        alpha = jnp.float32(self.alpha)
        return jnp.float32(self.initial_learning_rate) * ((1 - alpha) * cosine + alpha)


SCHEDULES: dict[str, Callable[..., LearningRateSchedule]] = {
    cls.__name__: cls
    for cls in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay, CosineDecay,
                CosineDecayRestarts)
}


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class_name", "config"}``, as Keras's ``schedules.serialize`` writes a built-in schedule."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict) -> LearningRateSchedule:
    """The built-in schedule a ``serialize`` dict (dagjax's or Keras's) describes."""
    cls = SCHEDULES.get(config.get("class_name")) if isinstance(config, dict) else None
    if cls is None:
        known = ", ".join(SCHEDULES)
        raise ValueError(f"Unknown learning rate schedule {config!r:.200}: expected one of {known}.")
    return cls.from_config(config.get("config", {}))
