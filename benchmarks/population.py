"""K members of a small MLP trained as one population program vs K sequential ``fit`` runs.

Each member has its own seed and learning rate; both ways train it on the
same data, batches and epochs (the population's members end as the ``fit``
runs do, checked here). Wall times include building the programs
(tracing and compiling): a cold round first, then a warm round that reuses
them (the population's compiled programs; each sequential model's own
compiled loop). Prints seconds and the sequential / population ratio:

    python benchmarks/population.py [--members 8] [--epochs 5] [--samples 2048] [--batch 64]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import dagjax as dj
from dagjax import layers
from dagjax import population as pop


def mlp() -> dj.Model:
    """The same small MLP each time (same layer names), 32 -> 64 -> 64 -> 1."""
    dj.clear_session()
    x = dj.Input((32,))
    h = layers.Dense(64, activation="relu")(x)
    h = layers.Dense(64, activation="relu")(h)
    return dj.Model(x, layers.Dense(1)(h))


def sequential(models: list, rates: list, x, y, args, compile_first: bool) -> float:
    """Seconds to train each model alone with ``fit`` (compiling it first when ``compile_first``)."""
    start = time.perf_counter()
    for seed, (model, rate) in enumerate(zip(models, rates)):
        model.params, model.state = model.init(jax.random.key(seed))
        if compile_first:
            model.compile(dj.optimizers.Adam(rate), "mse", seed=seed)
        model.fit(x, y, batch_size=args.batch, epochs=args.epochs, verbose=0)
        jax.block_until_ready(model.params)
    return time.perf_counter() - start


def population(members: pop.Population | None, rates: list, x, y, args) -> tuple:
    """Seconds to train every member as one program (building the population when ``members`` is None)."""
    start = time.perf_counter()
    if members is None:
        members = pop.Population(
            mlp(), "mse", "adam", hyperparams={"learning_rate": rates, "seed": list(range(len(rates)))}
        )
    state, _ = pop.fit_population(members, x, y, batch_size=args.batch, epochs=args.epochs)
    jax.block_until_ready(state.train.params)
    return time.perf_counter() - start, members, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.samples, 32)).astype("float32")
    y = np.sin(x[:, :1]) + x[:, 1:2] ** 2
    rates = list(np.geomspace(1e-4, 1e-2, args.members))
    models = [mlp() for _ in range(args.members)]

    cold_pop, members, state = population(None, rates, x, y, args)
    cold_seq = sequential(models, rates, x, y, args, compile_first=True)
    worst = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for i, model in enumerate(models)
        for a, b in zip(jax.tree.leaves(pop.member(state.train, i).params), jax.tree.leaves(model.params))
    )
    warm_pop, _, _ = population(members, rates, x, y, args)
    warm_seq = sequential(models, rates, x, y, args, compile_first=False)

    steps = -(-args.samples // args.batch)
    print(f"{args.members} members, {args.epochs} epochs of {steps} steps, on {jax.default_backend()}")
    print(f"largest weight difference, population vs fit: {worst:.2e}")
    print(f"{'':24}{'population':>12}{'sequential fit':>16}{'ratio':>8}")
    rounds = (("cold (with compiling)", cold_pop, cold_seq), ("warm (compiled)", warm_pop, warm_seq))
    for label, p, s in rounds:
        print(f"{label:24}{p:11.2f}s{s:15.2f}s{s / p:7.2f}x")


if __name__ == "__main__":
    main()
