"""DLwP 1st ed., ch. 7.2.1: ReduceLROnPlateau on val_loss.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports; a
patience of 1 and a `min_delta` no epoch's improvement reaches, so that the rate is cut within 4 epochs.
"""

import numpy as np
import keras
from keras import layers
from keras.models import Sequential

model = Sequential([layers.Dense(8, activation="relu"), layers.Dense(1)])
x = np.random.random((128, 8))
y = np.random.random((128, 1))

callbacks_list = [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=1,
                                                       min_delta=1.0)]
model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.5), loss="mse")
history = model.fit(x, y, epochs=4, batch_size=32, callbacks=callbacks_list, validation_data=(x, y))
assert min(history.history["learning_rate"]) < 0.5, history.history["learning_rate"]
