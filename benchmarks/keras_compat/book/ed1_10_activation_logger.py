"""DLwP 1st ed., ch. 7.2.1: a custom callback saving every layer's activations at the end of each epoch.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports. The
chapter reads `self.validation_data` and assigns `self.model`, which Keras 3 no longer allows:
the validation sample is given to the constructor and `set_model` calls the base class's, the two
changes the example needs to run on Keras 3 itself.
"""

import numpy as np
import keras
from keras import layers

class ActivationLogger(keras.callbacks.Callback):
    def __init__(self, validation_sample):
        super().__init__()
        self.validation_sample = validation_sample

    def set_model(self, model):
        super().set_model(model)
        layer_outputs = [layer.output for layer in model.layers]
        self.activations_model = keras.models.Model(model.input, layer_outputs)

    def on_epoch_end(self, epoch, logs=None):
        activations = self.activations_model.predict(self.validation_sample)
        with open("activations_at_epoch_" + str(epoch) + ".npz", "wb") as f:
            np.savez(f, *activations)


inputs = keras.Input(shape=(12,))
features = layers.Dense(8, activation="relu")(inputs)
outputs = layers.Dense(1, activation="sigmoid")(features)
model = keras.Model(inputs, outputs)
model.compile(optimizer="rmsprop", loss="binary_crossentropy")

x = np.random.random((64, 12))
y = np.random.randint(0, 2, size=(64, 1))
model.fit(x, y, epochs=2, batch_size=32, callbacks=[ActivationLogger(x[:1])])
with np.load("activations_at_epoch_1.npz") as saved:
    assert [saved[key].shape for key in sorted(saved.files)] == [(1, 12), (1, 8), (1, 1)]
