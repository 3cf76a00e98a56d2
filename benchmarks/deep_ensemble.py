"""A K-member ``DeepEnsemble`` of the MLP workload (784-512-512-10) against K sequential ``fit`` runs.

Both train every member on the same data, batches and epochs. Reported per
way: the first epoch's seconds (tracing and compiling included), then the
samples per second of the later epochs (compiled), and their ratio:

    python benchmarks/deep_ensemble.py [--members 5] [--epochs 3] [--steps 20] [--batch 128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import dagjax as dj
from dagjax import layers


def mlp() -> dj.Model:
    """The MLP workload's model, 784 -> 512 -> 512 -> 10 softmax."""
    x = dj.Input((784,))
    h = layers.Dense(512, activation="relu")(x)
    h = layers.Dense(512, activation="relu")(h)
    return dj.Model(x, layers.Dense(10, activation="softmax")(h))


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def ensemble_times(k: int, x, y, args) -> tuple[float, float]:
    """Seconds of the first epoch and of the later ones, all K members as one program."""
    ensemble = dj.ensemble.DeepEnsemble(mlp(), k, seed=0)
    ensemble.compile("adam", "categorical_crossentropy")
    first = timed(lambda: ensemble.fit(x, y, batch_size=args.batch, epochs=1, verbose=0))
    rest = timed(lambda: ensemble.fit(x, y, batch_size=args.batch, epochs=args.epochs - 1, verbose=0))
    return first, rest


def sequential_times(k: int, x, y, args) -> tuple[float, float]:
    """Seconds of the first epoch and of the later ones, summed over K models trained one after another."""
    first = rest = 0.0
    for seed in range(k):
        model = mlp()
        model.compile("adam", "categorical_crossentropy", seed=seed)
        first += timed(lambda m=model: m.fit(x, y, batch_size=args.batch, epochs=1, verbose=0))
        rest += timed(lambda m=model: m.fit(x, y, batch_size=args.batch, epochs=args.epochs - 1, verbose=0))
    return first, rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="batches per epoch")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = args.steps * args.batch
    x = rng.normal(size=(n, 784)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, n)]
    samples = args.members * n * (args.epochs - 1)  # member-samples trained in the later epochs
    for name, run in (("DeepEnsemble", ensemble_times), ("sequential fits", sequential_times)):
        first, rest = run(args.members, x, y, args)
        print(f"{name:16s} first epoch {first:6.2f} s   later epochs {samples / rest:9.0f} samples/s")


if __name__ == "__main__":
    main()
