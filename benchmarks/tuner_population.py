"""A 16-trial random search run one trial at a time (``population=1``) vs eight at a time (``=8``).

The same search both ways (seed 0, so the same 16 draws of learning rate and
Dropout rate): an MLP on scikit-learn's digits, 10 epochs a trial, objective
``val_accuracy`` on the last 20%. Wall time is the whole ``search``, building
and compiling included, each in a fresh study. Prints seconds, the speed-up
and each search's best objective:

    python benchmarks/tuner_population.py [--trials 16] [--population 8] [--epochs 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from sklearn.datasets import load_digits

import dagjax as dj
from dagjax import layers, tuners


def build(hp: tuners.HyperParameters) -> dj.Model:
    """64 -> 64 relu -> Dropout -> 10 softmax, Adam; learning rate and Dropout rate from ``hp``."""
    inp = dj.Input((64,))
    h = layers.Dense(64, activation="relu")(inp)
    h = layers.Dropout(hp.Float("dropout", 0.0, 0.5))(h)
    model = dj.Model(inp, layers.Dense(10, activation="softmax")(h))
    optimizer = dj.optimizers.Adam(hp.Float("learning_rate", 1e-4, 1e-1, sampling="log"))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run(population: int, trials: int, epochs: int, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(seconds, best val_accuracy)`` of one search in a fresh study."""
    with tempfile.TemporaryDirectory() as directory:
        tuner = tuners.RandomSearch(build, objective="val_accuracy", max_trials=trials, seed=0,
                                    directory=directory, project_name="bench", population=population)
        start = time.perf_counter()
        tuner.search(x, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=0)
        return time.perf_counter() - start, tuner.study.best_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    data = load_digits()
    x, y = (data.data / 16).astype("float32"), data.target.astype("int32")
    one = run(1, args.trials, args.epochs, x, y)
    many = run(args.population, args.trials, args.epochs, x, y)
    print(f"population=1: {one[0]:.1f} s, best val_accuracy {one[1]:.4f}")
    print(f"population={args.population}: {many[0]:.1f} s, best val_accuracy {many[1]:.4f}")
    print(f"speed-up: {one[0] / many[0]:.2f}x")


if __name__ == "__main__":
    main()
