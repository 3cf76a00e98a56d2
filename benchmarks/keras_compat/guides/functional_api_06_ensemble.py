"""The Functional API: ensembling models (three models averaged into one)."""

import numpy as np
import keras
from keras import layers


def get_model():
    inputs = keras.Input(shape=(128,))
    outputs = layers.Dense(1)(inputs)
    return keras.Model(inputs, outputs)


model1 = get_model()
model2 = get_model()
model3 = get_model()

inputs = keras.Input(shape=(128,))
y1 = model1(inputs)
y2 = model2(inputs)
y3 = model3(inputs)
outputs = layers.average([y1, y2, y3])
ensemble_model = keras.Model(inputs=inputs, outputs=outputs)

x = np.random.random((3, 128)).astype("float32")
expected = (model1.predict(x) + model2.predict(x) + model3.predict(x)) / 3
np.testing.assert_allclose(ensemble_model.predict(x), expected, rtol=1e-5, atol=1e-5)
