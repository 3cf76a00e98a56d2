"""Write your own callback: save every layer's activations on a validation sample at each epoch end.

A callback subclasses ``dagjax.callbacks.Callback`` and overrides the hooks
it needs (``on_epoch_end`` here). ``set_model`` hands it the model being
trained; ``self.model.params`` / ``self.model.state`` hold the current
weights whenever an epoch hook runs. Epoch hooks keep ``fit`` on its fused
multi-step path; overriding a batch hook (``on_train_batch_end``) makes
``fit`` run one step per call instead.

The activations come from a feature-extraction model: ``dj.Model`` over the
same input and every layer's output. It shares the trained model's layers,
so it runs on the trained model's params as they are, with no copy and no
re-initialisation, in one jitted call.

Run it: ``python examples/activation_logger.py`` writes
``activations/activations_at_epoch_<n>.npz``, one array per layer.
"""

from __future__ import annotations

import os

import jax
import numpy as np

import dagjax as dj
from dagjax import callbacks, layers


class ActivationLogger(callbacks.Callback):
    """At each epoch end, save every layer's output on ``sample`` to ``directory``, one ``.npz`` each."""

    def __init__(self, sample: np.ndarray, directory: str):
        super().__init__()
        self.sample = sample
        self.directory = directory
        self._features = None
        self._names: list[str] = []

    def set_model(self, model) -> None:
        if model is not self.model:  # fit calls set_model every time: build and compile once per model
            outputs = [layer.output for layer in model.layers]
            features = dj.Model(model.inputs, outputs, name=f"{model.name}_activations")
            self._features = jax.jit(lambda params, state, x: features.apply(params, state, x)[0])
            self._names = [layer.name for layer in model.layers]
        super().set_model(model)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        activations = self._features(self.model.params, self.model.state, self.sample)
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"activations_at_epoch_{epoch}.npz")
        np.savez(path, **{name: np.asarray(a) for name, a in zip(self._names, activations)})


def main(directory: str = "activations", epochs: int = 3) -> dj.Model:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, :1] + x[:, 1:2] > 0).astype("float32")
    inputs = dj.Input((8,), name="features")
    h = layers.Dense(16, activation="relu", name="hidden")(inputs)
    outputs = layers.Dense(1, activation="sigmoid", name="score")(h)
    model = dj.Model(inputs, outputs)
    model.compile("rmsprop", "binary_crossentropy", metrics=["accuracy"])
    x_val, y_val = x[200:], y[200:]
    logger = ActivationLogger(x_val[:1], directory)
    model.fit(x[:200], y[:200], epochs=epochs, validation_data=(x_val, y_val), callbacks=[logger], verbose=0)
    print(f"saved activations of {len(model.layers)} layers for {epochs} epochs to {directory}/")
    return model


if __name__ == "__main__":
    main()
