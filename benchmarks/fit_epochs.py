"""Epoch times of one workload's ``fit``, one epoch per call after a warm-up, and the lowering choices.

    cd benchmarks && PYTHONPATH=<checkout> ../.venv/bin/python fit_epochs.py [multi_io|cnn|cnn_full|...]

The workload's model and data as ``run.py`` builds them, the decisions cache in a fresh directory,
the ``dagjax`` log at INFO (each measurement's timings and the fusing probe's answer). Two
checkouts run one after the other compare the same program's speed without ``run.py``'s
subprocesses, when its table's ratios look like noise.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time

os.environ["DAGJAX_LOWERING_CACHE"] = tempfile.mkdtemp()

import functional_models  # noqa: E402
import workloads  # noqa: E402

import dagjax as dj  # noqa: E402

logging.basicConfig(level=logging.WARNING, format="%(message)s")
logging.getLogger("dagjax").setLevel(logging.INFO)

workload = workloads.WORKLOADS[sys.argv[1] if len(sys.argv) > 1 else "multi_io"]
model = functional_models.BUILDERS[workload.name](dj)
model.compile(optimizer=workloads.optax_optimizer(), **functional_models.compile_args(workload))
rows = workload.batch_size * workload.steps
x, y = workloads.make_data(workload, rows, 0)
model.fit(x, y, batch_size=workload.batch_size, epochs=1, verbose=0)  # compiles (and measures)
for _ in range(3):
    start = time.perf_counter()
    model.fit(x, y, batch_size=workload.batch_size, epochs=1, verbose=0)
    took = time.perf_counter() - start
    print(f"epoch {took * 1e3:.0f} ms, {rows / took:.0f} samples/s")
print(dj.config.lowering_choices(model))
