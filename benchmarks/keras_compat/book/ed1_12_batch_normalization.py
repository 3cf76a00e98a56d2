"""DLwP 1st ed., ch. 7.3.1: BatchNormalization after a convolution and after a dense layer.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports; the
chapter's snippets add the layers to a model `conv_model`/`dense_model`, built here around them.
"""

import numpy as np
from keras import layers
from keras.models import Sequential

conv_model = Sequential()
conv_model.add(layers.Conv2D(32, 3, activation="relu", input_shape=(12, 12, 3)))
conv_model.add(layers.BatchNormalization())
conv_model.add(layers.GlobalAveragePooling2D())

dense_model = Sequential()
dense_model.add(layers.Dense(32, activation="relu", input_shape=(16,)))
dense_model.add(layers.BatchNormalization())
dense_model.add(layers.Dense(1))

conv_model.compile(optimizer="rmsprop", loss="mse")
conv_model.fit(np.random.random((32, 12, 12, 3)), np.random.random((32, 32)), epochs=1, verbose=0)
dense_model.compile(optimizer="rmsprop", loss="mse")
dense_model.fit(np.random.random((32, 16)), np.random.random((32, 1)), epochs=1, verbose=0)
moving_mean = dense_model.layers[1].get_weights()[2]
assert np.any(moving_mean != 0.0)  # the statistics moved in training
