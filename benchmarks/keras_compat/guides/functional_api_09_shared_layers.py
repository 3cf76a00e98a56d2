"""The Functional API: Shared layers (one Embedding encoding two text inputs)."""

import keras
from keras import layers

shared_embedding = layers.Embedding(1000, 128)
text_input_a = keras.Input(shape=(None,), dtype="int32")
text_input_b = keras.Input(shape=(None,), dtype="int32")
encoded_input_a = shared_embedding(text_input_a)
encoded_input_b = shared_embedding(text_input_b)
model = keras.Model([text_input_a, text_input_b], [encoded_input_a, encoded_input_b])
assert len(model.weights) == 1
