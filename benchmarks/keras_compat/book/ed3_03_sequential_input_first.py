"""DLwP 3rd ed., ch. 7 "The Sequential model": specifying the input shape in advance, then adding layers."""

import keras
from keras import layers

model = keras.Sequential()
model.add(keras.Input(shape=(3,)))
model.add(layers.Dense(64, activation="relu"))

model.summary(line_length=80)

model.add(layers.Dense(10, activation="softmax"))
model.summary(line_length=80)
assert [tuple(w.shape) for w in model.weights] == [(3, 64), (64,), (64, 10), (10,)]
