"""DLwP 1st ed., ch. 7.1.4: an Inception module (four branches concatenated), built and run once.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports; the
chapter's snippet starts from a 4D tensor `x`, here an Input of 16x16x8, and its branches only
line up with "same" padding (as printed they do not concatenate, on Keras either), added here.
"""

import numpy as np
from keras import Input, layers
from keras.models import Model

x = Input(shape=(16, 16, 8))

branch_a = layers.Conv2D(128, 1, activation="relu", padding="same", strides=2)(x)

branch_b = layers.Conv2D(128, 1, activation="relu", padding="same")(x)
branch_b = layers.Conv2D(128, 3, activation="relu", padding="same", strides=2)(branch_b)

branch_c = layers.AveragePooling2D(3, strides=2, padding="same")(x)
branch_c = layers.Conv2D(128, 3, activation="relu", padding="same")(branch_c)

branch_d = layers.Conv2D(128, 1, activation="relu", padding="same")(x)
branch_d = layers.Conv2D(128, 3, activation="relu", padding="same")(branch_d)
branch_d = layers.Conv2D(128, 3, activation="relu", padding="same", strides=2)(branch_d)

output = layers.concatenate([branch_a, branch_b, branch_c, branch_d], axis=-1)

model = Model(x, output)
outputs = model.predict(np.random.random((2, 16, 16, 8)))
assert outputs.shape == (2, 8, 8, 512)
