"""DLwP 2nd ed. (Keras 3 imports), ch. 7 "Monitoring and visualization with TensorBoard".

The log folder is a relative one in place of the book's "/full_path_to_your_log_dir" placeholder."""

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


model = get_mnist_model()
model.compile(
    optimizer="rmsprop",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)

tensorboard = keras.callbacks.TensorBoard(
    log_dir="full_path_to_your_log_dir",
)
model.fit(
    train_images,
    train_labels,
    epochs=10,
    validation_data=(val_images, val_labels),
    callbacks=[tensorboard],
)
import os
assert os.listdir("full_path_to_your_log_dir")
