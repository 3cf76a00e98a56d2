"""DLwP 3rd ed., ch. 7 "The EarlyStopping and ModelCheckpoint callbacks", then load_model of the checkpoint."""

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


callbacks_list = [
    keras.callbacks.EarlyStopping(
        monitor="accuracy",
        patience=1,
    ),
    keras.callbacks.ModelCheckpoint(
        filepath="checkpoint_path.keras",
        monitor="val_loss",
        save_best_only=True,
    ),
]
model = get_mnist_model()
model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
model.fit(
    train_images,
    train_labels,
    epochs=10,
    callbacks=callbacks_list,
    validation_data=(val_images, val_labels),
)

model = keras.models.load_model("checkpoint_path.keras")
assert model.predict(test_images, verbose=0).shape == (100, 10)
