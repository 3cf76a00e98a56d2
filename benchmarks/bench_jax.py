"""Hand-written pure JAX + optax training: the limit a framework's ``fit`` is measured against.

Two variants of the same step (gather a shuffled batch from device-resident
data, value_and_grad, optax update, carry donated):

- ``loop``: the step jitted on its own and called from a Python loop;
- ``scan``: a whole epoch as one jitted ``lax.scan`` over the steps;
- ``loop_im2col`` / ``scan_im2col`` (the ``cnn_full`` workload only): the
  same two with its plain convolution lowered to slices + one matmul.

Neither wins everywhere (XLA:CPU runs conv gradients far slower inside a
scan), so the reference for a workload is whichever is faster there.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax_models import MODELS
from workloads import Trainer, Workload, epoch_order, optax_optimizer, timed_epochs, total_loss

VARIANTS = ("loop", "scan", "loop_im2col", "scan_im2col")
IM2COL_WORKLOADS = ("cnn_full",)  # the workloads whose apply takes ``conv_lowering``


def make_step(workload: Workload, apply, tx: optax.GradientTransformation):
    """``(carry, x, y, idx) -> (carry, loss)``: one optimizer step on the rows ``idx``."""

    def step(carry, x, y, idx):
        params, state, opt_state = carry
        xb, yb = jax.tree.map(lambda a: a[idx], (x, y))

        def loss_fn(p):
            out, new_state = apply(p, state, xb, training=True)
            return total_loss(workload, out, yb), new_state

        (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), new_state, opt_state), loss

    return step


def build(workload: Workload, data: tuple[dict, dict], variant: str, seed: int) -> Trainer:
    init, apply = MODELS[workload.name]
    if variant.endswith("_im2col"):
        if workload.name not in IM2COL_WORKLOADS:
            raise ValueError(f"{variant} is written for {IM2COL_WORKLOADS} only, not {workload.name!r}")
        apply, variant = functools.partial(apply, conv_lowering="im2col"), variant.removesuffix("_im2col")
    tx = optax_optimizer()
    params, state = jax.device_put(init(np.random.default_rng(seed)))
    carry = (params, state, tx.init(params))
    x, y = jax.device_put(data)
    n_steps = len(next(iter(data[0].values()))) // workload.batch_size
    step = make_step(workload, apply, tx)
    rng = np.random.default_rng(seed)

    if variant == "loop":
        step_at = jax.jit(lambda c, x, y, order, i: step(c, x, y, order[i]), donate_argnums=0)

        def run_epoch(carry, order):
            losses = []
            for i in range(n_steps):
                carry, loss = step_at(carry, x, y, order, i)
                losses.append(loss)
            return carry, losses
    else:
        scan = jax.jit(lambda c, x, y, order: jax.lax.scan(lambda c, i: step(c, x, y, i), c, order),
                       donate_argnums=0)

        def run_epoch(carry, order):
            return scan(carry, x, y, order)

    def train_epoch():
        nonlocal carry
        carry, losses = run_epoch(carry, jnp.asarray(epoch_order(n_steps, workload.batch_size, rng)))
        jax.block_until_ready(carry)
        return losses

    n_weights = sum(a.size for a in jax.tree.leaves((params, state)))
    return Trainer(timed_epochs(train_epoch), n_weights)
