"""Data-parallel overhead: ``fit`` under ``DataParallel`` on 1, 2 and 4 forced CPU devices against plain fit.

Each device count runs in its own process (``jax_num_cpu_devices`` is set
there, before JAX starts). The forced CPU devices share the machine's cores,
so this measures what the sharded program costs, not a speed-up. Reported per
workload and device count: samples/s of the compiled epochs (the first
epoch, which compiles, is left out) and the ratio to plain ``fit`` measured
in the same process:

    python benchmarks/data_parallel.py [--workloads mlp cnn] [--devices 1 2 4] [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def child(workload_name: str, devices: int, epochs: int) -> dict:
    """In a fresh process: samples/s of plain fit and of fit under DataParallel over ``devices``."""
    import jax

    jax.config.update("jax_num_cpu_devices", devices)
    import functional_models
    from workloads import WORKLOADS, make_data, optax_optimizer, single_or_dict

    import dagjax as dj

    workload = WORKLOADS[workload_name]
    x, y = make_data(workload, workload.steps * workload.batch_size)
    x, y = single_or_dict(x), single_or_dict(y)
    rates = {}
    for name, dist in (("plain", None), ("data_parallel", dj.distribution.DataParallel())):
        dj.clear_session()
        model = functional_models.build(dj, workload_name)
        model.compile(optimizer=optax_optimizer(), **functional_models.compile_args(workload))
        dj.distribution.set_distribution(dist)
        model.fit(x, y, batch_size=workload.batch_size, epochs=1, verbose=0)  # compiles
        start = time.perf_counter()
        model.fit(x, y, batch_size=workload.batch_size, epochs=epochs - 1, verbose=0)
        jax.block_until_ready(model.params)
        rates[name] = (epochs - 1) * workload.steps * workload.batch_size / (time.perf_counter() - start)
        dj.distribution.set_distribution(None)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.epochs)))
        return
    print(f"{'workload':10s} {'devices':>7s} {'plain':>12s} {'data-parallel':>14s} {'ratio':>6s}")
    for workload in args.workloads:
        for devices in args.devices:
            done = subprocess.run(
                [sys.executable, __file__, "--child", workload, str(devices), "--epochs", str(args.epochs)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "JAX_PLATFORMS": "cpu"},
            )
            rates = json.loads(done.stdout.strip().splitlines()[-1])
            plain, parallel = rates["plain"], rates["data_parallel"]
            print(f"{workload:10s} {devices:7d} {plain:10.0f}/s {parallel:12.0f}/s {parallel / plain:6.2f}")


if __name__ == "__main__":
    main()
