"""dagjax: ``model.fit`` on the shared functional models, with the same optax Adam as pure JAX."""

from __future__ import annotations

import functional_models
import jax
from workloads import Trainer, Workload, optax_optimizer

import dagjax as dj

VARIANTS = ("fit", "reads")


def build(workload: Workload, data: tuple[dict, dict], variant: str, seed: int) -> Trainer:
    model = functional_models.build(dj, workload.name)
    model.compile(optimizer=optax_optimizer(), **functional_models.compile_args(workload))
    # dagjax makes weights lazily (from its fixed default seed); Keras makes them at construction
    jax.block_until_ready(model.params)
    # Epoch logs are Python floats read from the state the epoch's last step wrote: nothing to wait for.
    reads = variant == "reads"  # a callback reads model.params at each epoch end
    return functional_models.fit_trainer(model, workload, data, dj.callbacks.Callback, lambda: None, reads)
