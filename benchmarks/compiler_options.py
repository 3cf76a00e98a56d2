"""A/B of an XLA compiler option on the hand-written JAX step, interleaved in one process.

    cd benchmarks && ../.venv/bin/python compiler_options.py mlp scan --option xla_cpu_prefer_vector_width=512

Both executables (XLA's defaults, and with the option) train the same
workload from the same state; their epochs alternate, so load from other
jobs lands on both alike. Prints ms/step, median and best, for each.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from alternate import alternate, epoch_program, example_args, summary
from bench_jax import make_step
from jax_models import MODELS
from workloads import WORKLOADS, epoch_order, make_data, optax_optimizer


def _option(text: str) -> tuple[str, object]:
    """``key=value`` with the value as an int or bool where it reads as one."""
    key, value = text.split("=", 1)
    if value.lstrip("-").isdigit():
        return key, int(value)
    return key, {"true": True, "false": False}.get(value.lower(), value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("variant", choices=["loop", "scan"])
    parser.add_argument("--option", type=_option, action="append", required=True, help="key=value")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    workload = WORKLOADS[args.workload]
    steps = workload.steps
    data = jax.device_put(make_data(workload, workload.batch_size * steps))
    init, apply = MODELS[args.workload]
    tx = optax_optimizer()
    params, state = init(np.random.default_rng(0))
    step = make_step(workload, apply, tx)
    rng = np.random.default_rng(0)
    fn = epoch_program(step, args.variant)
    example = example_args(args.variant, jnp.asarray(epoch_order(steps, workload.batch_size, rng)))
    variants = {"default": {}, "option": dict(args.option)}
    compiled, carries, compile_s = {}, {}, {}
    for name, options in variants.items():
        carries[name] = jax.device_put((params, state, tx.init(params)))
        lowered = fn.lower(carries[name], *data, *example)
        started = time.perf_counter()
        compiled[name] = lowered.compile(compiler_options=options)
        compile_s[name] = time.perf_counter() - started
    times = alternate(compiled, carries, data, workload, args.variant, args.rounds, rng)
    for name, ms in times.items():
        print(f"{args.workload} {args.variant} {name:8s} compile {compile_s[name]:.2f} s, {summary(ms)}")

if __name__ == "__main__":
    main()
