"""``fit`` samples/s of a benchmark workload under the float32 and mixed_bfloat16 (or mixed_float16) policies.

The same model (``functional_models.build``, every layer under the policy;
the losses are computed in float32 whatever the policy), data, batches and
epochs under each policy, one after the other in this process. Reported per policy: the first
epoch's seconds (tracing and compiling included) and the samples per second
of the later, compiled epochs (their median), the samples per CPU-second of
those epochs (this process's user + system time: what a shared machine's
load disturbs least), then the ratio of samples/s to float32:

    python benchmarks/mixed_precision.py [--workload mlp] [--policies float32 mixed_bfloat16]
                                         [--epochs 4] [--steps N]

On a CPU, XLA emulates bfloat16 arithmetic through float32 conversions, so
expect no speed-up there; the figure that matters is the GPU/TPU one.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import jax
from functional_models import build, compile_args
from workloads import WORKLOADS, make_data, single_or_dict

import dagjax as dj
from dagjax import mixed_precision


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_fit(workload_name: str, policy: str, epochs: int, steps: int) -> tuple[float, float, float, str]:
    """First-epoch seconds, compiled samples/s and samples per CPU-second, the first layer's compute dtype."""
    workload = WORKLOADS[workload_name]
    mixed_precision.set_global_policy(policy)
    try:
        model = build(dj, workload_name)
    finally:
        mixed_precision.set_global_policy("float32")
    x, y = make_data(workload, workload.batch_size * steps)
    x, y = single_or_dict(x), single_or_dict(y)
    model.compile("adam", **compile_args(workload), seed=0)
    stamps: list[float] = []
    cpu: list[float] = []

    class Stamp(dj.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            jax.block_until_ready(self.model.params)
            stamps.append(time.perf_counter())
            cpu.append(cpu_seconds())

    start = time.perf_counter()
    model.fit(x, y, batch_size=workload.batch_size, epochs=epochs, verbose=0, callbacks=[Stamp()])
    ends = [start, *stamps]
    seconds = [b - a for a, b in zip(ends, ends[1:])]
    samples = workload.batch_size * steps
    per_cpu = samples * (epochs - 1) / (cpu[-1] - cpu[0])
    rate = statistics.median(samples / s for s in seconds[1:])
    return seconds[0], rate, per_cpu, model.layers[1].compute_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="mlp", choices=sorted(WORKLOADS))
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=None, help="batches per epoch (workload's default)")
    args = parser.parse_args()
    steps = args.steps or WORKLOADS[args.workload].steps
    print(f"{args.workload}: {WORKLOADS[args.workload].description}, device {jax.devices()[0].device_kind}")
    baseline = None
    for policy in args.policies:
        first, rate, per_cpu, compute = timed_fit(args.workload, policy, args.epochs, steps)
        baseline = baseline or rate
        print(f"  {policy:15s} (compute {compute:8s}) first epoch {first:6.2f} s, {rate:9.0f} samples/s, "
              f"{per_cpu:9.0f} samples/CPU-s, {rate / baseline:.2f}x float32")


if __name__ == "__main__":
    main()
