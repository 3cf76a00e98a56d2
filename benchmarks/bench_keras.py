"""Keras 3 on the JAX backend: ``model.fit`` on the shared functional models."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import functional_models  # noqa: E402
import jax  # noqa: E402
import keras  # noqa: E402
from workloads import EPSILON, LEARNING_RATE, Trainer, Workload  # noqa: E402

VARIANTS = ("fit",)


def compiled_model(workload: Workload, seed: int) -> keras.Model:
    """The workload's model, compiled with the same Adam as every other framework."""
    keras.utils.set_random_seed(seed)
    model = functional_models.build(keras, workload.name)
    optimizer = keras.optimizers.Adam(LEARNING_RATE, beta_1=0.9, beta_2=0.999, epsilon=EPSILON)
    model.compile(optimizer=optimizer, **functional_models.compile_args(workload))
    return model


def wait_for_weights(model: keras.Model) -> None:
    """Keras's JAX trainer writes its state back into the variables before on_epoch_end: wait for them."""
    jax.block_until_ready([v.value for v in model.variables])


def build(workload: Workload, data: tuple[dict, dict], variant: str, seed: int) -> Trainer:
    model = compiled_model(workload, seed)
    sync = lambda: wait_for_weights(model)
    return functional_models.fit_trainer(model, workload, data, keras.callbacks.Callback, sync)
