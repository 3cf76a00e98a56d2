"""Flax NNX, trained the way its performance guide recommends for speed.

The modules are split once into a graph definition and a state pytree; the
jitted step merges them, runs ``nnx.value_and_grad`` and the ``nnx.Optimizer``
update, and returns the new state, so the object graph is walked only while
tracing, never per step. Layer choices mirror the Keras models (same shapes,
padding, BatchNormalization momentum and epsilon).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from workloads import (
    RESMLP_BLOCKS,
    RESMLP_WIDTH,
    VOCAB,
    Trainer,
    Workload,
    epoch_order,
    optax_optimizer,
    timed_epochs,
)
from workloads import total_loss as workload_loss

VARIANTS = ("nnx",)


class Mlp(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.d0 = nnx.Linear(784, 512, rngs=rngs)
        self.d1 = nnx.Linear(512, 512, rngs=rngs)
        self.out = nnx.Linear(512, 10, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.d1(nnx.relu(self.d0(x["pixels"]))))
        return {"probs": nnx.softmax(self.out(h))}


class MultiIO(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.embed = nnx.Embed(VOCAB, 64, rngs=rngs)
        self.conv = nnx.Conv(64, 128, (5,), padding="VALID", rngs=rngs)
        self.meta = nnx.Linear(32, 64, rngs=rngs)
        self.age = nnx.Linear(192, 1, rngs=rngs)
        self.income = nnx.Linear(192, 10, rngs=rngs)
        self.gender = nnx.Linear(192, 1, rngs=rngs)

    def __call__(self, x):
        t = jnp.max(nnx.relu(self.conv(self.embed(x["text"]))), axis=1)
        h = jnp.concatenate([t, nnx.relu(self.meta(x["meta"]))], -1)
        return {"age": self.age(h), "income": nnx.softmax(self.income(h)),
                "gender": nnx.sigmoid(self.gender(h))}


class SeparableConv(nnx.Module):
    """Depthwise 3x3 (one group per channel, no bias), then pointwise 1x1 with bias."""

    def __init__(self, c_in: int, c_out: int, rngs: nnx.Rngs):
        self.depthwise = nnx.Conv(c_in, c_in, (3, 3), padding="SAME", feature_group_count=c_in,
                                  use_bias=False, rngs=rngs)
        self.pointwise = nnx.Conv(c_in, c_out, (1, 1), rngs=rngs)

    def __call__(self, x):
        return self.pointwise(self.depthwise(x))


class Cnn(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.blocks = nnx.List()
        c_in = 3
        for f in (32, 64):
            self.blocks.append(nnx.List([
                nnx.Conv(c_in, f, (3, 3), strides=2, padding="SAME", rngs=rngs),
                nnx.BatchNorm(f, momentum=0.99, epsilon=1e-3, rngs=rngs),
                SeparableConv(f, 2 * f, rngs),
            ]))
            c_in = 2 * f
        self.out = nnx.Linear(c_in, 10, rngs=rngs)

    def __call__(self, x):
        h = x["image"]
        for conv, bn, sep in self.blocks:
            h = nnx.relu(sep(nnx.relu(bn(conv(h)))))
        return {"probs": nnx.softmax(self.out(jnp.mean(h, axis=(1, 2))))}


class ResMlp(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.stem = nnx.Linear(64, RESMLP_WIDTH, rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(RESMLP_WIDTH, RESMLP_WIDTH, rngs=rngs)
                                for _ in range(RESMLP_BLOCKS)])
        self.out = nnx.Linear(RESMLP_WIDTH, 10, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.stem(x["features"]))
        for block in self.blocks:
            h = h + nnx.tanh(block(h))
        return {"probs": nnx.softmax(self.out(h))}


MODELS = {"mlp": Mlp, "multi_io": MultiIO, "cnn": Cnn, "resmlp": ResMlp}


def build(workload: Workload, data: tuple[dict, dict], variant: str, seed: int) -> Trainer:
    model = MODELS[workload.name](nnx.Rngs(seed))
    optimizer = nnx.Optimizer(model, optax_optimizer(), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    x, y = jax.device_put(data)
    n_steps = len(next(iter(data[0].values()))) // workload.batch_size
    rng = np.random.default_rng(seed)

    def step(state, x, y, order, i):
        model, optimizer = nnx.merge(graphdef, state)
        xb, yb = jax.tree.map(lambda a: a[order[i]], (x, y))
        loss, grads = nnx.value_and_grad(lambda m: workload_loss(workload, m(xb), yb))(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    step = jax.jit(step, donate_argnums=0)

    def train_epoch():
        nonlocal state
        order = jnp.asarray(epoch_order(n_steps, workload.batch_size, rng))
        losses = []
        for i in range(n_steps):
            state, loss = step(state, x, y, order, i)
            losses.append(loss)
        jax.block_until_ready(state)
        return losses

    n_weights = sum(a.size for a in jax.tree.leaves(nnx.state(model)))
    return Trainer(timed_epochs(train_epoch), n_weights)
