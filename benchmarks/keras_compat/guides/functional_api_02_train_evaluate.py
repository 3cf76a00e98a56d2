"""The Functional API: Training, evaluation, and inference.

Changed from the guide: synthetic data with MNIST's shapes and dtypes (600 + 100 samples)
in place of ``keras.datasets.mnist.load_data()``.
"""

import numpy as np
import keras
from keras import layers

inputs = keras.Input(shape=(784,))
x = layers.Dense(64, activation="relu")(inputs)
x = layers.Dense(64, activation="relu")(x)
outputs = layers.Dense(10)(x)
model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")

rng = np.random.default_rng(0)
x_train = rng.integers(0, 256, size=(600, 28, 28)).astype("uint8")
y_train = rng.integers(0, 10, size=(600,)).astype("uint8")
x_test = rng.integers(0, 256, size=(100, 28, 28)).astype("uint8")
y_test = rng.integers(0, 10, size=(100,)).astype("uint8")

x_train = x_train.reshape(600, 784).astype("float32") / 255
x_test = x_test.reshape(100, 784).astype("float32") / 255

model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=keras.optimizers.RMSprop(),
    metrics=["accuracy"],
)

history = model.fit(x_train, y_train, batch_size=64, epochs=2, validation_split=0.2)

test_scores = model.evaluate(x_test, y_test, verbose=2)
print("Test loss:", test_scores[0])
print("Test accuracy:", test_scores[1])
