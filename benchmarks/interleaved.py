"""dagjax ``fit`` against a hand-written JAX loop or Keras 3 ``fit``, epochs interleaved in one process.

``run.py`` runs every framework in its own process, so a burst of load from
other jobs can land on one of them only; on a shared machine that moves a
single figure by 5-15%. Here both train in one process, taking turns epoch
by epoch: dagjax inside one ``fit`` call (as a user runs it), and at each of
its epoch ends a callback runs one epoch of the other. Both see the same
machine at nearly the same moment, so their ratio is what is left when the
noise is taken out. Prints the median and best ms/step of each.

Keras runs one ``fit(epochs=1)`` per turn, timed from its ``on_epoch_begin``
to its ``on_epoch_end`` (weights ready), as dagjax's epochs are: what a
``fit`` call does once (wrapping the data, building its iterator) is left
out for both, as a many-epoch ``fit`` pays it once.

    python benchmarks/interleaved.py --workload multi_io --variant loop --epochs 30
    python benchmarks/interleaved.py --workload mlp --variant keras --epochs 30
"""

from __future__ import annotations

import argparse
import statistics
import time

import bench_dagjax
import bench_jax
import functional_models
import jax
from workloads import WORKLOADS, Workload, make_data, optax_optimizer, single_or_dict

import dagjax as dj


def keras_epochs(workload: Workload, data: tuple[dict, dict]):
    """``run_epoch() -> seconds``: one Keras ``fit`` epoch, timed by its own epoch hooks."""
    import bench_keras  # imports Keras on the JAX backend: only when it is the reference
    import keras

    model = bench_keras.compiled_model(workload, seed=0)
    x, y = single_or_dict(data[0]), single_or_dict(data[1])

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            bench_keras.wait_for_weights(model)
            self.seconds = time.perf_counter() - self.start

    def run_epoch() -> float:
        timer = EpochTimer()
        model.fit(x, y, batch_size=workload.batch_size, epochs=1, verbose=0, callbacks=[timer])
        return timer.seconds

    return run_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    parser.add_argument("--variant", choices=[*bench_jax.VARIANTS, "keras"], default="loop",
                        help="hand-written JAX loop, or Keras 3 fit")
    parser.add_argument("--epochs", type=int, default=30, help="timed epochs of each (after a warm-up)")
    parser.add_argument("--steps", type=int, default=None, help="steps per epoch (default: the workload's)")
    args = parser.parse_args()
    dj.config.switches.hold_full_collections = True  # as run.py's cells (DAGJAX_HOLD_GC=1)
    workload = WORKLOADS[args.workload]
    steps = args.steps or workload.steps
    data = make_data(workload, steps * workload.batch_size)

    if args.variant == "keras":
        reference_epoch = keras_epochs(workload, data)
        name = "keras fit"
    else:
        trainer = bench_jax.build(workload, data, args.variant, seed=0)
        reference_epoch = lambda: trainer.run_epochs(1)[0][0]  # noqa: E731
        name = f"jax {args.variant}"
    reference_epoch()  # compile
    model = functional_models.build(dj, workload.name)
    model.compile(optimizer=optax_optimizer(), **functional_models.compile_args(workload))
    assert bench_dagjax.VARIANTS == ("fit",)

    times: dict[str, list[float]] = {"dagjax fit": [], name: []}

    class TakeTurns(dj.callbacks.Callback):
        """Times each dagjax epoch, then runs and times one epoch of the other."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            # The epoch's logs are floats read from its last state: its steps have run.
            if epoch > 0:  # epoch 0 compiles
                times["dagjax fit"].append(time.perf_counter() - self.start)
                times[name].append(reference_epoch())

    x, y = single_or_dict(data[0]), single_or_dict(data[1])
    turns = [TakeTurns()]
    model.fit(x, y, batch_size=workload.batch_size, epochs=args.epochs + 1, verbose=0, callbacks=turns)
    jax.block_until_ready(model.params)
    print(f"# {workload.name}: {workload.description}, batch {workload.batch_size}, {steps} steps/epoch, "
          f"{args.epochs} interleaved epochs")
    for name, seconds in times.items():
        per_step = [s / steps * 1e3 for s in seconds]
        print(f"{name:12s} median {statistics.median(per_step):.3f} ms/step, best {min(per_step):.3f}")
    ours, ref = (statistics.median(s) for s in times.values())
    print(f"dagjax / {name} samples/s (medians): {ref / ours:.3f}x")


if __name__ == "__main__":
    main()
