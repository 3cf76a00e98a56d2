"""The benchmark workloads, shared by every framework: sizes, synthetic data, losses, optimizer.

A workload names its inputs and outputs; data, losses and loss weights are
dicts keyed by those names in every framework, so each runs the same problem.
Losses are written here once in plain ``jax.numpy`` with Keras 3's exact
formulas (probabilities clipped to ``[EPSILON, 1 - EPSILON]``), for the
frameworks that take a loss function; Keras and dagjax get the Keras names.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import optax

LEARNING_RATE = 1e-3
EPSILON = 1e-7  # Keras's backend epsilon: its losses and its Adam default

VOCAB = 10_000
SEQ_LEN = 100
RESMLP_BLOCKS = 100
RESMLP_WIDTH = 256


@dataclasses.dataclass(frozen=True)
class Feature:
    """One model input: float32 normal noise, or int32 token ids below ``vocab``."""

    shape: tuple[int, ...]
    vocab: int | None = None


@dataclasses.dataclass(frozen=True)
class Target:
    """One model output: its width, Keras loss name and loss weight."""

    width: int
    loss: str
    weight: float = 1.0


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    description: str
    batch_size: int
    steps: int  # default steps per epoch; the same in every framework
    inputs: dict[str, Feature]
    outputs: dict[str, Target]


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload(
            "mlp",
            "MLP 784-512-512-10",
            batch_size=128,
            steps=100,
            inputs={"pixels": Feature((784,))},
            outputs={"probs": Target(10, "categorical_crossentropy")},
        ),
        Workload(
            "multi_io",
            f"2 inputs/3 outputs: Embedding+Conv1D text (len {SEQ_LEN}), dense meta",
            batch_size=64,
            steps=20,
            inputs={"text": Feature((SEQ_LEN,), vocab=VOCAB), "meta": Feature((32,))},
            outputs={
                "age": Target(1, "mse", 0.25),
                "income": Target(10, "categorical_crossentropy", 1.0),
                "gender": Target(1, "binary_crossentropy", 10.0),
            },
        ),
        Workload(
            "cnn",
            "CNN 32x32x3: (Conv2D+BN+SeparableConv2D) x2",
            batch_size=64,
            steps=10,
            inputs={"image": Feature((32, 32, 3))},
            outputs={"probs": Target(10, "categorical_crossentropy")},
        ),
        Workload(
            "cnn_full",
            "CNN 32x32x3 full resolution: Conv2D 32, BN, SeparableConv2D 64, BN, MaxPool, "
            "SeparableConv2D 128, BN, GAP, Dense (3x3, valid, no strides)",
            batch_size=64,
            steps=10,
            inputs={"image": Feature((32, 32, 3))},
            outputs={"probs": Target(10, "categorical_crossentropy")},
        ),
        Workload(
            "resmlp",
            f"{RESMLP_BLOCKS}-block residual MLP h + tanh(Dense(h)), {RESMLP_WIDTH} wide",
            batch_size=32,
            steps=50,
            inputs={"features": Feature((64,))},
            outputs={"probs": Target(10, "categorical_crossentropy")},
        ),
    ]
}


class Trainer(NamedTuple):
    """What each framework module's ``build`` returns.

    ``run_epochs(n)`` trains ``n`` epochs and returns the wall time of each
    (the first includes compiling; each ends when the epoch's weights are
    ready) and the last epoch's loss (a float, or per-step losses to average,
    read only after timing). ``n_weights`` counts every weight, trainable or
    not, to check all frameworks build the same model.
    """

    run_epochs: Callable[[int], tuple[list[float], Any]]
    n_weights: int


def timed_epochs(train_epoch: Callable[[], Any]) -> Callable[[int], tuple[list[float], Any]]:
    """``run_epochs`` for a loop run an epoch at a time (``train_epoch()`` returns with the weights ready)."""

    def run_epochs(n: int) -> tuple[list[float], Any]:
        seconds, loss = [], None
        for _ in range(n):
            start = time.perf_counter()
            loss = train_epoch()
            seconds.append(time.perf_counter() - start)
        return seconds, loss

    return run_epochs


def make_data(workload: Workload, n: int, seed: int = 0) -> tuple[dict, dict]:
    """``n`` synthetic samples as ``(inputs, targets)`` dicts of numpy arrays."""
    rng = np.random.default_rng(seed)
    x = {}
    for name, f in workload.inputs.items():
        if f.vocab is None:
            x[name] = rng.standard_normal((n, *f.shape), dtype=np.float32)
        else:
            x[name] = rng.integers(0, f.vocab, (n, *f.shape), dtype=np.int32)
    y = {}
    for name, t in workload.outputs.items():
        if t.loss == "categorical_crossentropy":
            y[name] = np.eye(t.width, dtype=np.float32)[rng.integers(0, t.width, n)]
        elif t.loss == "binary_crossentropy":
            y[name] = rng.integers(0, 2, (n, t.width)).astype(np.float32)
        else:
            y[name] = rng.standard_normal((n, t.width), dtype=np.float32)
    return x, y


def epoch_order(n_steps: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """A shuffled ``(steps, batch)`` index array: one epoch without replacement."""
    return rng.permutation(n_steps * batch_size).astype(np.int32).reshape(n_steps, batch_size)


def mse(y, p):
    return jnp.mean(jnp.square(y - p))


def categorical_crossentropy(y, p):
    p = jnp.clip(p / jnp.sum(p, -1, keepdims=True), EPSILON, 1.0 - EPSILON)
    return jnp.mean(-jnp.sum(y * jnp.log(p), -1))


def binary_crossentropy(y, p):
    p = jnp.clip(p, EPSILON, 1.0 - EPSILON)
    return jnp.mean(-(y * jnp.log(p) + (1.0 - y) * jnp.log(1.0 - p)))


LOSSES = {"mse": mse, "categorical_crossentropy": categorical_crossentropy,
          "binary_crossentropy": binary_crossentropy}


def total_loss(workload: Workload, outputs: dict, targets: dict):
    """``sum_i weight_i * loss_i(target_i, output_i)``, each loss a batch mean."""
    return sum(t.weight * LOSSES[t.loss](targets[k], outputs[k]) for k, t in workload.outputs.items())


def optax_optimizer() -> optax.GradientTransformation:
    """Adam with Keras's defaults, for the frameworks that take optax."""
    return optax.adam(LEARNING_RATE, b1=0.9, b2=0.999, eps=EPSILON)


def single_or_dict(d: dict):
    """A one-entry dict as its bare value, as Keras-style ``fit`` expects for one input/output."""
    return next(iter(d.values())) if len(d) == 1 else d
