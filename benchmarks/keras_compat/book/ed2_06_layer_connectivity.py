"""DLwP 2nd ed. (Keras 3 imports), ch. 7 "Access to layer connectivity": plot_model, model.layers, a layer's input/output, a new head."""

import keras
from keras import layers

vocabulary_size = 10000
num_tags = 100
num_departments = 4

title = keras.Input(shape=(vocabulary_size,), name="title")
text_body = keras.Input(shape=(vocabulary_size,), name="text_body")
tags = keras.Input(shape=(num_tags,), name="tags")

features = layers.Concatenate()([title, text_body, tags])
features = layers.Dense(64, activation="relu")(features)

priority = layers.Dense(1, activation="sigmoid", name="priority")(features)
department = layers.Dense(
    num_departments, activation="softmax", name="department"
)(features)

model = keras.Model(
    inputs=[title, text_body, tags],
    outputs=[priority, department],
)

keras.utils.plot_model(model, "ticket_classifier.png")
keras.utils.plot_model(
    model,
    "ticket_classifier_with_shape_info.png", show_shapes=True)

model.layers
model.layers[3].input
model.layers[3].output
assert [tuple(t.shape) for t in model.layers[3].input] == [(None, 10000), (None, 10000), (None, 100)]
assert tuple(model.layers[3].output.shape) == (None, 20100)

features = model.layers[4].output
difficulty = layers.Dense(3, activation="softmax", name="difficulty")(features)

new_model = keras.Model(
    inputs=[title, text_body, tags], outputs=[priority, department, difficulty]
)
keras.utils.plot_model(
    new_model,
    "updated_ticket_classifier.png", show_shapes=True)
assert len(new_model.outputs) == 3
