"""Training & evaluation with the built-in methods: Checkpointing models: fault tolerance (restore the latest checkpoint)."""

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

import os

# Prepare a directory to store all the checkpoints.
checkpoint_dir = "./ckpt"
if not os.path.exists(checkpoint_dir):
    os.makedirs(checkpoint_dir)


def make_or_restore_model():
    # Either restore the latest model, or create a fresh one
    # if there is no checkpoint available.
    checkpoints = [checkpoint_dir + "/" + name for name in os.listdir(checkpoint_dir)]
    if checkpoints:
        latest_checkpoint = max(checkpoints, key=os.path.getctime)
        print("Restoring from", latest_checkpoint)
        return keras.models.load_model(latest_checkpoint)
    print("Creating a new model")
    return get_compiled_model()


for _ in range(2):  # the second round restores what the first saved
    model = make_or_restore_model()
    callbacks = [
        # This callback saves the model every 10 batches (the guide: 100).
        # We include the training loss in the saved model name.
        keras.callbacks.ModelCheckpoint(
            filepath=checkpoint_dir + "/model-loss={loss:.2f}.keras", save_freq=10
        )
    ]
    model.fit(x_train, y_train, epochs=1, callbacks=callbacks)
