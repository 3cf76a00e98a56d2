"""DLwP 1st ed., ch. 7.2.2: a text classifier trained with TensorBoard (histograms and embeddings), then plotted.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports;
random reviews of 100 words in place of IMDB (no download), one epoch. `plot_model` needs pydot
and graphviz on Keras; it is called as the chapter does where they are installed.
"""

import os

import numpy as np
import keras
from keras import layers
from keras.models import Sequential

max_features = 2000
max_len = 100

model = Sequential()
model.add(layers.Embedding(max_features, 128, input_length=max_len, name="embed"))
model.add(layers.Conv1D(32, 7, activation="relu"))
model.add(layers.MaxPooling1D(5))
model.add(layers.Conv1D(32, 7, activation="relu"))
model.add(layers.GlobalMaxPooling1D())
model.add(layers.Dense(1))
model.summary()
model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])

x_train = np.random.randint(1, max_features, size=(128, max_len))
y_train = np.random.randint(0, 2, size=(128, 1))

os.makedirs("my_log_dir", exist_ok=True)
callbacks = [keras.callbacks.TensorBoard(log_dir="my_log_dir", histogram_freq=1, embeddings_freq=1)]
history = model.fit(
    x_train, y_train, epochs=1, batch_size=64, validation_split=0.2, callbacks=callbacks
)
assert any(files for _, _, files in os.walk("my_log_dir"))

try:
    import pydot  # noqa: F401
except ImportError:
    pass
else:
    keras.utils.plot_model(model, show_shapes=True, to_file="model.png")
