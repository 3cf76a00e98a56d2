"""The workload models written once against the Keras functional API, and the ``fit`` trainer.

``build(api, name)`` takes a module with ``Input``, ``layers`` and ``Model``:
``keras`` or ``dagjax``. Running the same source in both is what guarantees
the two benchmark the same graph (and checks dagjax speaks Keras).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import jax
from workloads import RESMLP_BLOCKS, RESMLP_WIDTH, SEQ_LEN, VOCAB, Trainer, Workload, single_or_dict


def mlp(api: ModuleType):
    x = api.Input(shape=(784,), name="pixels")
    h = api.layers.Dense(512, activation="relu")(x)
    h = api.layers.Dense(512, activation="relu")(h)
    return api.Model(x, api.layers.Dense(10, activation="softmax", name="probs")(h))


def multi_io(api: ModuleType):
    layers = api.layers
    text = api.Input(shape=(SEQ_LEN,), dtype="int32", name="text")
    meta = api.Input(shape=(32,), name="meta")
    t = layers.Embedding(VOCAB, 64)(text)
    t = layers.Conv1D(128, 5, activation="relu")(t)
    t = layers.GlobalMaxPooling1D()(t)
    m = layers.Dense(64, activation="relu")(meta)
    h = layers.concatenate([t, m])
    age = layers.Dense(1, name="age")(h)
    income = layers.Dense(10, activation="softmax", name="income")(h)
    gender = layers.Dense(1, activation="sigmoid", name="gender")(h)
    return api.Model([text, meta], [age, income, gender])


def cnn(api: ModuleType):
    layers = api.layers
    x = api.Input(shape=(32, 32, 3), name="image")
    h = x
    for filters in (32, 64):
        h = layers.Conv2D(filters, 3, strides=2, padding="same")(h)
        h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
        h = layers.SeparableConv2D(2 * filters, 3, padding="same", activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    return api.Model(x, layers.Dense(10, activation="softmax", name="probs")(h))


def cnn_full(api: ModuleType):
    layers = api.layers
    x = api.Input(shape=(32, 32, 3), name="image")
    h = layers.BatchNormalization()(layers.Conv2D(32, 3)(x))
    h = layers.BatchNormalization()(layers.SeparableConv2D(64, 3)(h))
    h = layers.MaxPooling2D()(h)
    h = layers.BatchNormalization()(layers.SeparableConv2D(128, 3)(h))
    h = layers.GlobalAveragePooling2D()(h)
    return api.Model(x, layers.Dense(10, activation="softmax", name="probs")(h))


def resmlp(api: ModuleType):
    layers = api.layers
    x = api.Input(shape=(64,), name="features")
    h = layers.Dense(RESMLP_WIDTH, activation="relu")(x)
    for _ in range(RESMLP_BLOCKS):
        h = layers.add([h, layers.Dense(RESMLP_WIDTH, activation="tanh")(h)])
    return api.Model(x, layers.Dense(10, activation="softmax", name="probs")(h))


BUILDERS = {"mlp": mlp, "multi_io": multi_io, "cnn": cnn, "cnn_full": cnn_full, "resmlp": resmlp}


def build(api: ModuleType, name: str):
    """The model of workload ``name``, built with ``api`` (``keras`` or ``dagjax``)."""
    return BUILDERS[name](api)


def fit_trainer(
    model,
    workload: Workload,
    data: tuple[dict, dict],
    callback_base: type,
    sync: Callable[[], Any],
    reads_weights: bool = False,
) -> Trainer:
    """Train with one ``model.fit`` call (Keras defaults: shuffled, ``verbose=0``), timing each epoch.

    A callback stamps the end of each epoch after ``sync()``, which waits for
    the epoch's weights where the framework's epoch logs do not already
    imply them; with ``reads_weights`` it also reads ``model.params``, as
    ModelCheckpoint does (the dagjax ``reads`` variant: what that costs in
    memory). One call, as a user's ``fit(x, y, epochs=n)``: what ``fit``
    does once per call (placing the data on the device, building the step)
    lands in the first epoch, as the pure-JAX loops place their data once.
    """
    x, y = single_or_dict(data[0]), single_or_dict(data[1])

    class EpochTimer(callback_base):
        reads_model = reads_weights  # read by dagjax checkouts before the fit session (--baseline)

        def __init__(self):
            super().__init__()
            self.stamps: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            sync()
            if reads_weights:
                jax.block_until_ready(self.model.params)
            self.stamps.append(time.perf_counter())

    def run_epochs(n: int) -> tuple[list[float], Any]:
        timer = EpochTimer()
        start = time.perf_counter()
        history = model.fit(x, y, batch_size=workload.batch_size, epochs=n, verbose=0, callbacks=[timer])
        ends = [start, *timer.stamps]
        return [b - a for a, b in zip(ends, ends[1:])], history.history["loss"][-1]

    return Trainer(run_epochs, int(model.count_params()))


def compile_args(workload: Workload) -> dict:
    """``loss`` and ``loss_weights`` for ``model.compile``, keyed by output name."""
    losses = {k: t.loss for k, t in workload.outputs.items()}
    if len(losses) == 1:
        return {"loss": single_or_dict(losses)}
    return {"loss": losses, "loss_weights": {k: t.weight for k, t in workload.outputs.items()}}
