"""One benchmark cell: one framework variant on one workload, alone in this process.

Prints one JSON line. The protocol, the same for every framework:

1. make the data (numpy), then build the model and its weights (``build_s``);
2. train ``1 + epochs`` epochs in one go (``Trainer.run_epochs``: a Python
   loop of epochs for the hand-written loops, one ``fit`` call for the
   Keras-style frameworks), each epoch timed up to its weights being ready;
   the first (``first_epoch_s``) includes compiling, and for ``fit`` also
   what one call does once (placing the data on the device);
3. ``step_ms`` is the fastest timed epoch over ``steps`` (other processes on
   a shared machine only ever add time) and ``samples_per_s`` follows from
   it; ``median_step_ms`` is kept too;
4. ``first_step_s`` = first epoch - (steps - 1) x steady step time, i.e.
   the wall time of the first step, compile included, for loops and fused
   epochs alike (its error is (steps - 1) x the step-time jitter: small for
   fast steps, large for the seconds-long steps of conv models in a scan);
5. ``to_first_step_s`` = ``build_s`` + ``first_step_s``: how long a script
   waits from building the model to its first trained step. Frameworks split
   that work differently (the hand-written loop compiles its optimizer's
   init while building, Keras makes its weights then, dagjax makes its
   optimizer state inside ``fit``), so this sum, not the first step alone,
   is what compares them fairly.

Memory is the process's resident-set high-water mark (``ru_maxrss``), taken
before building (``base_rss_mib``: interpreter, imports, data) and at the end
(``peak_rss_mib``), plus the accelerator's peak bytes in use when there is one.

    python benchmarks/cell.py jax loop mlp --steps 100 --epochs 2
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from workloads import WORKLOADS, make_data  # noqa: E402


def max_rss_mib() -> float:
    """``ru_maxrss`` in MiB (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if platform.system() == "Darwin" else rss / 2**10


def device_peak_mib() -> float | None:
    """Peak accelerator memory in use, or ``None`` on CPU (where it is part of the RSS)."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    stats = device.memory_stats() or {}
    return stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None


def run_cell(framework: str, variant: str, workload_name: str, steps: int, epochs: int, seed: int) -> dict:
    try:
        module = importlib.import_module(f"bench_{framework}")
    except ModuleNotFoundError as err:
        raise SystemExit(f"{err.name} is not installed: pip install -e '.[bench]'") from err
    if variant not in module.VARIANTS:
        raise ValueError(f"{framework} has variants {module.VARIANTS}, not {variant!r}")
    workload = WORKLOADS[workload_name]
    jax.devices()  # start the backend before any clock: it is process start-up, not model building
    data = make_data(workload, steps * workload.batch_size, seed)
    base_rss = max_rss_mib()

    t0 = time.perf_counter()
    trainer = module.build(workload, data, variant, seed)
    t1 = time.perf_counter()
    seconds, losses = trainer.run_epochs(1 + epochs)
    first_epoch_s, epoch_s = seconds[0], seconds[1:]

    step_s = min(epoch_s) / steps
    return {
        "framework": framework,
        "variant": variant,
        "workload": workload_name,
        "batch_size": workload.batch_size,
        "steps": steps,
        "epochs": epochs,
        "samples_per_s": workload.batch_size / step_s,
        "step_ms": step_s * 1e3,
        "median_step_ms": statistics.median(epoch_s) / steps * 1e3,
        "epoch_s": epoch_s,
        "first_step_s": first_epoch_s - (steps - 1) * step_s,
        "first_epoch_s": first_epoch_s,
        "to_first_step_s": (t1 - t0) + first_epoch_s - (steps - 1) * step_s,
        "build_s": t1 - t0,
        "base_rss_mib": base_rss,
        "peak_rss_mib": max_rss_mib(),
        "device_peak_mib": device_peak_mib(),
        "loss": float(np.mean(np.asarray(losses))),
        "n_weights": trainer.n_weights,
        "device": str(jax.devices()[0].device_kind),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework")
    parser.add_argument("variant")
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--steps", type=int, required=True, help="steps per epoch")
    parser.add_argument("--epochs", type=int, required=True, help="timed epochs after the first")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run_cell(args.framework, args.variant, args.workload, args.steps, args.epochs, args.seed)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
