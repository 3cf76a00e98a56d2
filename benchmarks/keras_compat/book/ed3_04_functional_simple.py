"""DLwP 3rd ed., ch. 7 "The Functional API": a simple example, its symbolic tensors' shape and dtype."""

import keras
from keras import layers

inputs = keras.Input(shape=(3,), name="my_input")
features = layers.Dense(64, activation="relu")(inputs)
outputs = layers.Dense(10, activation="softmax")(features)
model = keras.Model(inputs=inputs, outputs=outputs, name="my_functional_model")

inputs = keras.Input(shape=(3,), name="my_input")
inputs.shape
inputs.dtype
assert tuple(inputs.shape) == (None, 3) and inputs.dtype == "float32"

features = layers.Dense(64, activation="relu")(inputs)
features.shape
assert tuple(features.shape) == (None, 64)

outputs = layers.Dense(10, activation="softmax")(features)
model = keras.Model(inputs=inputs, outputs=outputs, name="my_functional_model")
model.summary(line_length=80)
