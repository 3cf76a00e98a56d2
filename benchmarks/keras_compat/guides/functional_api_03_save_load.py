"""The Functional API: Save and serialize (``model.save`` then ``keras.models.load_model``)."""

import numpy as np
import keras
from keras import layers

inputs = keras.Input(shape=(784,))
x = layers.Dense(64, activation="relu")(inputs)
x = layers.Dense(64, activation="relu")(x)
outputs = layers.Dense(10)(x)
model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=keras.optimizers.RMSprop(),
    metrics=["accuracy"],
)
x = np.random.random((4, 784)).astype("float32")
before = model.predict(x)

model.save("my_model.keras")
del model
# Recreate the exact same model purely from the file:
model = keras.models.load_model("my_model.keras")
np.testing.assert_allclose(model.predict(x), before, rtol=1e-6, atol=1e-6)
