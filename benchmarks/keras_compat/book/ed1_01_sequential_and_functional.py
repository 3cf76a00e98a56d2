"""DLwP 1st ed., ch. 7.1.1: a Sequential model and its functional equivalent, trained on random data.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports.
"""

import numpy as np
from keras import Input, layers
from keras.models import Model, Sequential

seq_model = Sequential()
seq_model.add(layers.Dense(32, activation="relu", input_shape=(64,)))
seq_model.add(layers.Dense(32, activation="relu"))
seq_model.add(layers.Dense(10, activation="softmax"))

input_tensor = Input(shape=(64,))
x = layers.Dense(32, activation="relu")(input_tensor)
x = layers.Dense(32, activation="relu")(x)
output_tensor = layers.Dense(10, activation="softmax")(x)
model = Model(input_tensor, output_tensor)
model.summary()

model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
x_train = np.random.random((100, 64))
y_train = np.random.random((100, 10))
model.fit(x_train, y_train, epochs=2, batch_size=32)
score = model.evaluate(x_train, y_train)

# A model between an input and an output it is not connected to is refused.
unrelated_input = Input(shape=(32,))
try:
    Model(unrelated_input, output_tensor)
except (ValueError, RuntimeError) as err:
    print("refused:", err)
else:
    raise AssertionError("a disconnected graph was accepted")
