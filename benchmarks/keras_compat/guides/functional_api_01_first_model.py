"""The Functional API: Introduction (Input, shape, dtype, layer calls, Model, summary, plot_model)."""

import keras
from keras import layers

inputs = keras.Input(shape=(784,))
img_inputs = keras.Input(shape=(32, 32, 3))
assert tuple(inputs.shape) == (None, 784)
assert str(inputs.dtype) == "float32"

dense = layers.Dense(64, activation="relu")
x = dense(inputs)
x = layers.Dense(64, activation="relu")(x)
outputs = layers.Dense(10)(x)

model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
model.summary()
keras.utils.plot_model(model, "my_first_model.png")
keras.utils.plot_model(model, "my_first_model_with_shape_info.png", show_shapes=True)
