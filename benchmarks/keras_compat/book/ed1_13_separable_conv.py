"""DLwP 1st ed., ch. 7.3.2: a small convnet of depthwise separable convolutions, trained one epoch.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports; 32
random 64x64 images of 10 classes (the chapter's shapes) in place of a dataset it does not give.
"""

import numpy as np
from keras import layers
from keras.models import Sequential

height = 64
width = 64
channels = 3
num_classes = 10

model = Sequential()
model.add(layers.SeparableConv2D(32, 3, activation="relu", input_shape=(height, width, channels)))
model.add(layers.SeparableConv2D(64, 3, activation="relu"))
model.add(layers.MaxPooling2D(2))
model.add(layers.SeparableConv2D(64, 3, activation="relu"))
model.add(layers.SeparableConv2D(128, 3, activation="relu"))
model.add(layers.MaxPooling2D(2))
model.add(layers.SeparableConv2D(64, 3, activation="relu"))
model.add(layers.SeparableConv2D(128, 3, activation="relu"))
model.add(layers.GlobalAveragePooling2D())
model.add(layers.Dense(32, activation="relu"))
model.add(layers.Dense(num_classes, activation="softmax"))

model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
x = np.random.random((32, height, width, channels))
y = np.eye(num_classes)[np.random.randint(0, num_classes, size=32)]
model.fit(x, y, epochs=1, batch_size=16)
