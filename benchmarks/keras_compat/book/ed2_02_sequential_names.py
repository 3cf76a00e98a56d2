"""DLwP 2nd ed. (Keras 3 imports), ch. 7 "The Sequential model": naming models and layers with the `name` argument."""

import keras
from keras import layers

model = keras.Sequential(name="my_example_model")
model.add(layers.Dense(64, activation="relu", name="my_first_layer"))
model.add(layers.Dense(10, activation="softmax", name="my_last_layer"))
model.build((None, 3))
model.summary()
assert [layer.name for layer in model.layers] == ["my_first_layer", "my_last_layer"]
