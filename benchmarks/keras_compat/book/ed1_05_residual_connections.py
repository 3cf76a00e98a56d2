"""DLwP 1st ed., ch. 7.1.4: residual connections, an identity one and one through a strided 1x1 convolution.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports; the
chapter's snippets start from a 4D tensor `x`, here an Input of 16x16x128, with "same" padding so
the shapes add up.
"""

import numpy as np
from keras import Input, layers
from keras.models import Model

x = Input(shape=(16, 16, 128))
y = layers.Conv2D(128, 3, activation="relu", padding="same")(x)
y = layers.Conv2D(128, 3, activation="relu", padding="same")(y)
y = layers.Conv2D(128, 3, activation="relu", padding="same")(y)
y = layers.add([y, x])

z = layers.Conv2D(128, 3, activation="relu", padding="same")(y)
z = layers.Conv2D(128, 3, activation="relu", padding="same")(z)
z = layers.MaxPooling2D(2, strides=2)(z)
residual = layers.Conv2D(128, 1, strides=2, padding="same")(y)
z = layers.add([z, residual])

model = Model(x, z)
assert model.predict(np.random.random((2, 16, 16, 128))).shape == (2, 8, 8, 128)
