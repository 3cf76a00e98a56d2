"""DLwP 2nd ed. (Keras 3 imports), ch. 7 "Mixing and matching": a Functional model used in a subclassed model."""

import numpy as np
import keras
from keras import layers

inputs = keras.Input(shape=(64,))
outputs = layers.Dense(1, activation="sigmoid")(inputs)
binary_classifier = keras.Model(inputs=inputs, outputs=outputs)


class MyModel(keras.Model):
    def __init__(self, num_classes=2):
        super().__init__()
        self.dense = layers.Dense(64, activation="relu")
        self.classifier = binary_classifier

    def call(self, inputs):
        features = self.dense(inputs)
        return self.classifier(features)


model = MyModel()
assert np.asarray(model(np.ones((2, 5), "float32"))).shape == (2, 1)
