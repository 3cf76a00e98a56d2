"""DLwP 1st ed., ch. 7.1.5: one LSTM shared by two branches (a siamese sentence-similarity model).

Written after the chapter's example (it has no companion notebook), with Keras 2's imports;
random sentences of 10 steps in place of the chapter's data.
"""

import numpy as np
from keras import Input, layers
from keras.models import Model

lstm = layers.LSTM(32)

left_input = Input(shape=(None, 128))
left_output = lstm(left_input)

right_input = Input(shape=(None, 128))
right_output = lstm(right_input)

merged = layers.concatenate([left_output, right_output], axis=-1)
predictions = layers.Dense(1, activation="sigmoid")(merged)

model = Model([left_input, right_input], predictions)
model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])

left_data = np.random.random((64, 10, 128))
right_data = np.random.random((64, 10, 128))
targets = np.random.randint(0, 2, size=(64, 1))
model.fit([left_data, right_data], targets, epochs=1, batch_size=32)
assert len(model.trainable_weights) == 5  # the LSTM's 3 once, the Dense's 2
