"""Measures what ``steps_per_execution`` should default to: fused steps vs one jitted step per call.

``fit`` can run each step as its own jitted call (``steps_per_execution=1``)
or many steps inside one compiled ``fori_loop`` (``k > 1``). This script
times both on a tiny and a larger dense model and a small convolutional one, after a warm-up
epoch (compilation excluded), and prints samples/s:

    python benchmarks/steps_per_execution.py [--epochs 2]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import dagjax as dj
from dagjax import layers


def tiny():
    x = dj.Input((20,))
    h = layers.Dense(64, activation="relu")(x)
    return dj.Model(x, layers.Dense(10, activation="softmax")(h)), (20,), 32


def mlp():
    x = dj.Input((784,))
    h = layers.Dense(512, activation="relu")(x)
    h = layers.Dense(512, activation="relu")(h)
    return dj.Model(x, layers.Dense(10, activation="softmax")(h)), (784,), 128


def cnn():
    x = dj.Input((28, 28, 1))
    h = layers.Conv2D(16, 3, activation="relu")(x)
    h = layers.Conv2D(32, 3, strides=2, activation="relu")(h)
    h = layers.Flatten()(h)
    return dj.Model(x, layers.Dense(10, activation="softmax")(h)), (28, 28, 1), 64


def samples_per_second(build, spe, epochs: int, steps: int) -> float:
    model, shape, batch = build()
    rng = np.random.default_rng(0)
    n = batch * steps
    x = rng.normal(size=(n, *shape)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, n)]
    model.compile("adam", "categorical_crossentropy", steps_per_execution=spe)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compile and warm up
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    jax.block_until_ready(model.params)
    return n * epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    print(f"backend: {jax.default_backend()}, devices: {jax.devices()}")
    print(f"{'model':6} {'steps_per_execution':>20} {'samples/s':>10}")
    for name, build in (("tiny", tiny), ("mlp", mlp), ("cnn", cnn)):
        for spe in (1, 8, 32, "auto"):
            rate = samples_per_second(build, spe, args.epochs, args.steps)
            print(f"{name:6} {spe!s:>20} {rate:10,.0f}", flush=True)


if __name__ == "__main__":
    main()
