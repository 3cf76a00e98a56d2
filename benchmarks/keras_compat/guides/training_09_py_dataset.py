"""Training & evaluation with the built-in methods: Training & evaluation using PyDataset instances."""

import numpy as np
import keras
from keras import layers
from keras import ops

# Synthetic data with MNIST's shapes and dtypes (700 + 100 samples) in place of
# keras.datasets.mnist.load_data(): no download, a short run.
rng = np.random.default_rng(0)
x_train = rng.integers(0, 256, size=(700, 28, 28)).astype("uint8")
y_train = rng.integers(0, 10, size=(700,)).astype("uint8")
x_test = rng.integers(0, 256, size=(100, 28, 28)).astype("uint8")
y_test = rng.integers(0, 10, size=(100,)).astype("uint8")

x_train = x_train.reshape(700, 784).astype("float32") / 255
x_test = x_test.reshape(100, 784).astype("float32") / 255
y_train = y_train.astype("float32")
y_test = y_test.astype("float32")

# Reserve 100 samples for validation
x_val = x_train[-100:]
y_val = y_train[-100:]
x_train = x_train[:-100]
y_train = y_train[:-100]


def get_uncompiled_model():
    inputs = keras.Input(shape=(784,), name="digits")
    x = layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model


def get_compiled_model():
    model = get_uncompiled_model()
    model.compile(
        optimizer="rmsprop",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return model

class ExamplePyDataset(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x = x
        self.y = y
        self.batch_size = batch_size

    def __len__(self):
        return int(np.ceil(len(self.x) / float(self.batch_size)))

    def __getitem__(self, idx):
        batch_x = self.x[idx * self.batch_size : (idx + 1) * self.batch_size]
        batch_y = self.y[idx * self.batch_size : (idx + 1) * self.batch_size]
        return batch_x, batch_y


train_py_dataset = ExamplePyDataset(x_train, y_train, batch_size=32)
val_py_dataset = ExamplePyDataset(x_val, y_val, batch_size=32)

model = get_compiled_model()
model.fit(train_py_dataset, batch_size=64, validation_data=val_py_dataset, epochs=1)
model.evaluate(val_py_dataset)
