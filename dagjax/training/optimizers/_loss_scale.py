"""Dynamic loss scaling for float16 training: Keras's ``LossScaleOptimizer`` as an optax transformation.

float16 gradients underflow to zero where float32 ones would not. The train
step multiplies the loss by a scale before differentiating (so the float16
gradients inside the model are scaled up too), and this transformation
divides the float32 gradients it receives by the same scale before the inner
optimizer sees them. As in Keras:

- a step whose gradients hold an inf or a NaN is skipped (zero updates, the
  inner optimizer's state unchanged) and the scale is halved;
- after ``dynamic_growth_steps`` finite steps in a row the scale is doubled.

The skipping is optax's ``apply_if_finite`` (told never to give up); the
scale and its counter live in the optimizer state (:class:`LossScaleState`),
so the step stays one pure jitted function. The step differentiates with
:func:`scaled_value_and_grad`, which finds the scale there.

>>> opt = LossScaleOptimizer(Adam(), initial_scale=2.0**15)
>>> loss_scale(opt.init({"w": jnp.zeros(3)}))
Array(32768., dtype=float32)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dagjax.training.optimizers._keras import KerasOptimizer, deserialize, get

_NEVER_GIVE_UP = int(jnp.iinfo(jnp.int32).max)  # apply_if_finite applies a bad step after this many


class LossScaleState(NamedTuple):
    """The loss scale, the finite steps since it last changed, and ``apply_if_finite``'s state."""

    scale: jax.Array  # float32
    growth_count: jax.Array  # int32, Keras's step_counter
    inner_state: Any  # optax.ApplyIfFiniteState around the inner optimizer's state


class LossScaleOptimizer(KerasOptimizer):
    """``inner_optimizer`` with dynamic loss scaling, as ``keras.optimizers.LossScaleOptimizer``.

    ``inner_optimizer``: a Keras name, a dagjax optimizer or any optax
    transformation. ``compile`` wraps the optimizer in one by itself when the
    model computes in float16 (``mixed_float16``), unless given
    ``auto_scale_loss=False``.
    """

    def __new__(
        cls,
        inner_optimizer: Any,
        initial_scale: float = 2.0**15,
        dynamic_growth_steps: int = 2000,
        name: str | None = None,
    ) -> LossScaleOptimizer:
        inner = deserialize(inner_optimizer) if isinstance(inner_optimizer, dict) else get(inner_optimizer)
        if isinstance(inner, LossScaleOptimizer):
            raise ValueError("LossScaleOptimizer wraps an optimizer that already scales the loss.")
        if not float(initial_scale) > 0:
            raise ValueError(f"LossScaleOptimizer initial_scale must be > 0, got {initial_scale!r}.")
        if isinstance(dynamic_growth_steps, bool) or not int(dynamic_growth_steps) >= 1:
            raise ValueError(
                f"LossScaleOptimizer dynamic_growth_steps must be an int >= 1, got {dynamic_growth_steps!r}."
            )
        skipping = optax.apply_if_finite(inner, _NEVER_GIVE_UP)
        growth_steps = int(dynamic_growth_steps)

        def init(params: Any) -> LossScaleState:
            """The initial scale, no finite steps yet, the inner optimizer's fresh state."""
            return LossScaleState(
                jnp.asarray(initial_scale, jnp.float32), jnp.zeros([], jnp.int32), skipping.init(params)
            )

        def update(grads: Any, state: LossScaleState, params: Any = None, **extra: Any) -> tuple:
            """Unscale ``grads``; on finite ones step the inner optimizer, else skip; then move the scale."""
            unscaled = jax.tree.map(lambda g: g / state.scale.astype(g.dtype), grads)
            updates, inner_state = skipping.update(unscaled, state.inner_state, params, **extra)
            finite = inner_state.last_finite
            grow = finite & (state.growth_count == growth_steps - 1)
            scale = jnp.where(finite, jnp.where(grow, state.scale * 2.0, state.scale), state.scale * 0.5)
            count = jnp.where(finite & ~grow, state.growth_count + 1, 0).astype(jnp.int32)
            return updates, LossScaleState(scale, count, inner_state)

        config = {
            "name": name or "loss_scale_optimizer",
            "inner_optimizer": inner,
            "initial_scale": float(initial_scale),
            "dynamic_growth_steps": growth_steps,
        }
        optimizer = super().__new__(cls, init, update, "LossScaleOptimizer", config)
        optimizer.inner_optimizer = inner
        return optimizer

    def __getnewargs__(self) -> tuple:
        """The constructor's arguments, so that ``copy`` and ``pickle`` make it again."""
        config = self._config
        return (self.inner_optimizer, config["initial_scale"], config["dynamic_growth_steps"], config["name"])

    @property
    def initial_scale(self) -> float:
        """The scale the first step uses."""
        return self._config["initial_scale"]

    @property
    def dynamic_growth_steps(self) -> int:
        """Finite steps in a row after which the scale doubles."""
        return self._config["dynamic_growth_steps"]


def _is_loss_scale_state(node: Any) -> bool:
    return isinstance(node, LossScaleState)


def loss_scale(opt_state: Any) -> jax.Array | None:
    """The loss scale kept in ``opt_state`` (the one the next step uses), or None without a loss scaler."""
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=_is_loss_scale_state) if _is_loss_scale_state(s)]
    return found[0].scale if found else None


def scaled_value_and_grad(loss_fn: Callable, opt_state: Any) -> Callable:
    """``jax.value_and_grad(loss_fn, has_aux=True)``, differentiating the loss times ``opt_state``'s scale.

    The value comes back unscaled; the gradients scaled, for :class:`LossScaleOptimizer` to unscale.
    Without a loss scale in ``opt_state`` this is ``jax.value_and_grad`` itself.
    """
    scale = loss_scale(opt_state)
    if scale is None:
        return jax.value_and_grad(loss_fn, has_aux=True)

    def scaled(*args: Any) -> tuple:
        loss, aux = loss_fn(*args)
        return loss * scale, (loss, aux)

    scaled_grad = jax.value_and_grad(scaled, has_aux=True)

    def value_and_grad(*args: Any) -> tuple:
        (_, (loss, aux)), grads = scaled_grad(*args)
        return (loss, aux), grads

    return value_and_grad


def _computes_in_float16(layer: Any) -> bool:
    """Whether ``layer`` or a layer inside it has the ``mixed_float16`` policy."""
    return layer.dtype_policy.name == "mixed_float16" or any(
        _computes_in_float16(sub) for sub in layer.sublayers.values()
    )


def with_loss_scaling(optimizer: optax.GradientTransformation, model: Any) -> optax.GradientTransformation:
    """``optimizer`` in a :class:`LossScaleOptimizer` if ``model`` computes in float16, as ``compile`` does.

    Keras looks at the model's own policy; a model whose layers were given
    ``dtype="mixed_float16"`` under a float32 global policy is scaled here too,
    since its float16 gradients underflow all the same.
    """
    if isinstance(optimizer, LossScaleOptimizer) or not _computes_in_float16(model):
        return optimizer
    return LossScaleOptimizer(optimizer)
