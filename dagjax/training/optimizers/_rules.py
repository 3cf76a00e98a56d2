"""Keras 3 optimizer update rules, one per optimizer, written as Keras's ``update_step`` writes them.

Each rule updates one parameter from its gradient, its slots (Keras's optimizer
variables: ``momentum``, ``velocity``, ...), the learning rate and the 1-based
step. ``dagjax.training.optimizers._keras`` wraps a rule with clipping, weight decay
and an injected learning rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp


class Rule(NamedTuple):
    """One optimizer's update rule, applied to each parameter the way Keras's ``update_step`` is.

    ``slots`` maps slot names to their initial value (a float, filled in each parameter's shape).
    ``step(g, slots, lr, t, shared) -> (delta, new_slots)`` where ``delta`` is added to the
    parameter and ``t`` is the 1-based step as a float. ``advance(shared, t)`` updates the
    rule-wide state once per step, before the per-parameter steps.
    """

    slots: dict[str, float]
    step: Callable
    shared: Any = ()
    advance: Callable = lambda shared, t: shared


def given(value: Any, on: Callable[[float], bool] = bool) -> bool:
    """Whether a factor's term is in the program: a Python number when ``on(value)``, an injected one always.

    A factor kept in the optimizer state (``inject_hyperparams``) is an array,
    traced in the step, whose value the program cannot branch on: its term
    stays in, and a zero there computes what leaving it out would.
    """
    if value is None:
        return False
    return on(value) if isinstance(value, (int, float)) else True


def sgd(momentum: float, nesterov: bool) -> Rule:
    """Keras SGD: ``m = momentum * m - lr * g``, then ``p += m`` (or the Nesterov look-ahead)."""
    if not given(momentum):
        return Rule({}, lambda g, s, lr, t, sh: (-(g * lr), s))

    def step(g, s, lr, t, shared):
        m = s["momentum"] * momentum - g * lr
        delta = m * momentum - g * lr if nesterov else m
        return delta, {"momentum": m}

    return Rule({"momentum": 0.0}, step)


def rmsprop(rho: float, momentum: float, epsilon: float, centered: bool) -> Rule:
    """Keras RMSprop, optionally centered and with momentum; epsilon inside the square root."""
    with_momentum = given(momentum, lambda m: m > 0)
    slots = {
        "velocity": 0.0,
        **({"momentum": 0.0} if with_momentum else {}),
        **({"average_gradient": 0.0} if centered else {}),
    }

    def step(g, s, lr, t, shared):
        new = {"velocity": rho * s["velocity"] + (1 - rho) * jnp.square(g)}
        if centered:
            new["average_gradient"] = rho * s["average_gradient"] + (1 - rho) * g
            denominator = new["velocity"] - jnp.square(new["average_gradient"]) + epsilon
        else:
            denominator = new["velocity"] + epsilon
        increment = (lr * g) / jnp.sqrt(denominator)
        if with_momentum:
            new["momentum"] = momentum * s["momentum"] + increment
            return -new["momentum"], new
        return -increment, new

    return Rule(slots, step)


def adam(beta_1: float, beta_2: float, epsilon: float, amsgrad: bool) -> Rule:
    """Keras Adam (and AdamW): bias correction folded into the step size, epsilon outside the root."""
    slots = {"momentum": 0.0, "velocity": 0.0, **({"velocity_hat": 0.0} if amsgrad else {})}

    def step(g, s, lr, t, shared):
        alpha = lr * jnp.sqrt(1 - jnp.power(jnp.float32(beta_2), t)) / (1 - jnp.power(jnp.float32(beta_1), t))
        new = {
            "momentum": s["momentum"] + (g - s["momentum"]) * (1 - beta_1),
            "velocity": s["velocity"] + (jnp.square(g) - s["velocity"]) * (1 - beta_2),
        }
        v = new["velocity"]
        if amsgrad:
            v = new["velocity_hat"] = jnp.maximum(s["velocity_hat"], v)
        return -((new["momentum"] * alpha) / (jnp.sqrt(v) + epsilon)), new

    return Rule(slots, step)


def adagrad(initial_accumulator_value: float, epsilon: float) -> Rule:
    """Keras Adagrad: the accumulator starts at ``initial_accumulator_value``."""

    def step(g, s, lr, t, shared):
        accumulator = s["accumulator"] + jnp.square(g)
        return -((lr * g) / jnp.sqrt(accumulator + epsilon)), {"accumulator": accumulator}

    return Rule({"accumulator": initial_accumulator_value}, step)


def adadelta(rho: float, epsilon: float) -> Rule:
    """Keras Adadelta, whose step is scaled by the learning rate."""

    def step(g, s, lr, t, shared):
        accumulated_grad = rho * s["accumulated_grad"] + (1 - rho) * jnp.square(g)
        delta_var = -(
            (jnp.sqrt(s["accumulated_delta_var"] + epsilon) * g) / jnp.sqrt(accumulated_grad + epsilon)
        )
        accumulated_delta_var = rho * s["accumulated_delta_var"] + (1 - rho) * jnp.square(delta_var)
        return lr * delta_var, {
            "accumulated_grad": accumulated_grad,
            "accumulated_delta_var": accumulated_delta_var,
        }

    return Rule({"accumulated_grad": 0.0, "accumulated_delta_var": 0.0}, step)


def adamax(beta_1: float, beta_2: float, epsilon: float) -> Rule:
    """Keras Adamax: the second moment is an exponentially weighted infinity norm."""

    def step(g, s, lr, t, shared):
        m = s["m"] + (g - s["m"]) * (1 - beta_1)
        u = jnp.maximum(beta_2 * s["u"], jnp.abs(g))
        return -((lr * m) / ((1 - jnp.power(jnp.float32(beta_1), t)) * (u + epsilon))), {"m": m, "u": u}

    return Rule({"m": 0.0, "u": 0.0}, step)


def nadam(beta_1: float, beta_2: float, epsilon: float) -> Rule:
    """Keras Nadam with its momentum schedule ``u_t = beta_1 * (1 - 0.5 * 0.96**t)``."""

    def advance(u_product, t):
        return u_product * beta_1 * (1.0 - 0.5 * jnp.power(jnp.float32(0.96), t))

    def step(g, s, lr, t, u_product):
        b1, b2, decay = jnp.float32(beta_1), jnp.float32(beta_2), jnp.float32(0.96)
        u_t = b1 * (1.0 - 0.5 * jnp.power(decay, t))
        u_t_1 = b1 * (1.0 - 0.5 * jnp.power(decay, t + 1))
        m = s["momentum"] + (g - s["momentum"]) * (1 - b1)
        v = s["velocity"] + (jnp.square(g) - s["velocity"]) * (1 - b2)
        m_hat = (u_t_1 * m) / (1 - u_product * u_t_1) + ((1 - u_t) * g) / (1 - u_product)
        v_hat = v / (1 - jnp.power(b2, t))
        return -((m_hat * lr) / (jnp.sqrt(v_hat) + epsilon)), {"momentum": m, "velocity": v}

    return Rule({"momentum": 0.0, "velocity": 0.0}, step, jnp.ones([], jnp.float32), advance)


def lion(beta_1: float, beta_2: float) -> Rule:
    """Keras Lion: the sign of an interpolated momentum."""

    def step(g, s, lr, t, shared):
        b1, b2 = jnp.float32(beta_1), jnp.float32(beta_2)
        delta = -(lr * jnp.sign(s["momentum"] * b1 + g * (1.0 - b1)))
        return delta, {"momentum": s["momentum"] * b2 + g * (1.0 - b2)}

    return Rule({"momentum": 0.0}, step)
