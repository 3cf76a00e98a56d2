"""A/B of how a dense layer's weight gradient reaches XLA:CPU, interleaved in one process.

    cd benchmarks && ../.venv/bin/python dense_weight_grad.py mlp scan

Autodiff writes the weight gradient of ``x @ kernel`` as a dot contracting
the batch axis of both operands; XLA:CPU hands that form to its own dot
emitter, not to YNNPACK, which takes only row-major operands. The variant
``transposed`` materialises ``x.T`` behind an optimization barrier so the dot
becomes row-major and YNNPACK takes it. Both train the same workload from
the same state, their epochs alternating; prints the number of YNNPACK
fusions and ms/step, median and best, for each.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import jax_models
import numpy as np
from alternate import alternate, epoch_program, example_args, summary
from bench_jax import make_step
from jax import lax
from workloads import WORKLOADS, epoch_order, make_data, optax_optimizer


@jax.custom_vjp
def _matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return x @ kernel


def _matmul_fwd(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple]:
    return x @ kernel, (x, kernel)


def _matmul_bwd(saved: tuple, grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = saved
    return grad @ kernel.T, lax.optimization_barrier(x.T) @ grad


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dense_transposed(p: dict, x: jax.Array) -> jax.Array:
    """``jax_models.dense`` with the weight gradient taken from a materialised ``x.T``."""
    return _matmul(x, p["kernel"]) + p["bias"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["mlp", "resmlp"])
    parser.add_argument("variant", choices=["loop", "scan"])
    parser.add_argument("--rounds", type=int, default=24)
    args = parser.parse_args()
    workload = WORKLOADS[args.workload]
    steps = workload.steps
    data = jax.device_put(make_data(workload, workload.batch_size * steps))
    init, apply = jax_models.MODELS[args.workload]
    tx = optax_optimizer()
    params, state = init(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    example = example_args(args.variant, jnp.asarray(epoch_order(steps, workload.batch_size, rng)))
    compiled, carries = {}, {}
    for name, dense in (("autodiff", jax_models.dense), ("transposed", dense_transposed)):
        jax_models.dense = dense  # the models look it up when traced, i.e. in lower() below
        fn = epoch_program(make_step(workload, apply, tx), args.variant)
        carries[name] = jax.device_put((params, state, tx.init(params)))
        compiled[name] = fn.lower(carries[name], *data, *example).compile()
        print(f"{name:10s} YNNPACK fusions: {compiled[name].as_text().count('__ynn_fusion')}")
    times = alternate(compiled, carries, data, workload, args.variant, args.rounds, rng)
    for name, ms in times.items():
        print(f"{args.workload} {args.variant} {name:10s} {summary(ms)}")

if __name__ == "__main__":
    main()
