"""DLwP 2nd ed. (Keras 3 imports), ch. 7 "Writing your own callbacks": a per-batch loss history plotted each epoch.

matplotlib is not installed here: the plot calls run only where it is (a guard added around the import)."""

import numpy as np
import keras
from keras import layers

# Synthetic data with MNIST's shapes and dtypes (700 + 100 samples) in place of
# keras.datasets.mnist.load_data(): no download, a short run.
rng = np.random.default_rng(0)
images = rng.integers(0, 256, size=(700, 28, 28)).astype("uint8")
labels = rng.integers(0, 10, size=(700,)).astype("uint8")
test_images = rng.integers(0, 256, size=(100, 28, 28)).astype("uint8")
test_labels = rng.integers(0, 10, size=(100,)).astype("uint8")
images = images.reshape((700, 28 * 28)).astype("float32") / 255
test_images = test_images.reshape((100, 28 * 28)).astype("float32") / 255
train_images, val_images = images[100:], images[:100]
train_labels, val_labels = labels[100:], labels[:100]


def get_mnist_model():
    inputs = keras.Input(shape=(28 * 28,))
    features = layers.Dense(512, activation="relu")(inputs)
    features = layers.Dropout(0.5)(features)
    outputs = layers.Dense(10, activation="softmax")(features)
    model = keras.Model(inputs, outputs)
    return model

try:
    from matplotlib import pyplot as plt
except ImportError:  # not installed here: keep the callback's logic, skip drawing
    plt = None


class LossHistory(keras.callbacks.Callback):
    def on_train_begin(self, logs):
        self.per_batch_losses = []

    def on_batch_end(self, batch, logs):
        self.per_batch_losses.append(logs.get("loss"))

    def on_epoch_end(self, epoch, logs):
        assert len(self.per_batch_losses) == 19 and None not in self.per_batch_losses
        if plt is not None:
            plt.clf()
            plt.plot(
                range(len(self.per_batch_losses)),
                self.per_batch_losses,
                label="Training loss for each batch",
            )
            plt.xlabel(f"Batch (epoch {epoch})")
            plt.ylabel("Loss")
            plt.legend()
            plt.savefig(f"plot_at_epoch_{epoch}")
        self.per_batch_losses = []


model = get_mnist_model()
model.compile(
    optimizer="rmsprop",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.fit(
    train_images,
    train_labels,
    epochs=10,
    callbacks=[LossHistory()],
    validation_data=(val_images, val_labels),
)
