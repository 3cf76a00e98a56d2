"""DLwP 3rd ed., ch. 7 "The Sequential model": a Sequential without an input shape, built by build()."""

import keras
from keras import layers

model = keras.Sequential(
    [
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ]
)

model = keras.Sequential()
model.add(layers.Dense(64, activation="relu"))
model.add(layers.Dense(10, activation="softmax"))

model.weights

model.build(input_shape=(None, 3))
model.weights
assert [tuple(w.shape) for w in model.weights] == [(3, 64), (64,), (64, 10), (10,)]

model.summary(line_length=80)
