"""DLwP 1st ed., ch. 7.2.1: ModelCheckpoint and EarlyStopping in fit, monitoring accuracy and val_loss.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports; the
checkpoint file is `my_model.keras` (Keras 3 saves whole models only to `.keras`; the chapter's
`.h5` is Keras 2's), and a small dense classifier on random data stands in for the chapter's model.
"""

import os

import numpy as np
import keras
from keras import layers
from keras.models import Sequential

model = Sequential([layers.Dense(16, activation="relu"), layers.Dense(10, activation="softmax")])
x = np.random.random((200, 20))
y = np.random.randint(0, 10, size=(200,))
x_val, y_val = x[:50], y[:50]

callbacks_list = [
    keras.callbacks.EarlyStopping(monitor="acc", patience=1),
    keras.callbacks.ModelCheckpoint(filepath="my_model.keras", monitor="val_loss", save_best_only=True),
]
model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["acc"])
model.fit(x, y, epochs=3, batch_size=32, callbacks=callbacks_list, validation_data=(x_val, y_val))
assert os.path.exists("my_model.keras")
restored = keras.models.load_model("my_model.keras")
assert restored.predict(x_val).shape == (50, 10)
