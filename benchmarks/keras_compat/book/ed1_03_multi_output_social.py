"""DLwP 1st ed., ch. 7.1.3: one social-media post in, three predictions out (age, income, gender).

Written after the chapter's example (it has no companion notebook), with Keras 2's imports: the
variable-length Conv1D tower, losses as a list and as a dict, and loss weights. 64 posts of 300
words stand in for the chapter's data, which it does not give.
"""

import numpy as np
from keras import Input, layers
from keras.models import Model

vocabulary_size = 50000
num_income_groups = 10

posts_input = Input(shape=(None,), dtype="int32", name="posts")
embedded_posts = layers.Embedding(vocabulary_size, 256)(posts_input)
x = layers.Conv1D(128, 5, activation="relu")(embedded_posts)
x = layers.MaxPooling1D(5)(x)
x = layers.Conv1D(256, 5, activation="relu")(x)
x = layers.Conv1D(256, 5, activation="relu")(x)
x = layers.MaxPooling1D(5)(x)
x = layers.Conv1D(256, 5, activation="relu")(x)
x = layers.Conv1D(256, 5, activation="relu")(x)
x = layers.GlobalMaxPooling1D()(x)
x = layers.Dense(128, activation="relu")(x)

age_prediction = layers.Dense(1, name="age")(x)
income_prediction = layers.Dense(num_income_groups, activation="softmax", name="income")(x)
gender_prediction = layers.Dense(1, activation="sigmoid", name="gender")(x)

model = Model(posts_input, [age_prediction, income_prediction, gender_prediction])

posts = np.random.randint(1, vocabulary_size, size=(64, 300))
age_targets = np.random.randint(18, 80, size=(64, 1)).astype("float32")
income_targets = np.eye(num_income_groups)[np.random.randint(0, num_income_groups, size=64)]
gender_targets = np.random.randint(0, 2, size=(64, 1))

model.compile(optimizer="rmsprop", loss=["mse", "categorical_crossentropy", "binary_crossentropy"])
model.compile(
    optimizer="rmsprop",
    loss={"age": "mse", "income": "categorical_crossentropy", "gender": "binary_crossentropy"},
)
model.compile(
    optimizer="rmsprop",
    loss=["mse", "categorical_crossentropy", "binary_crossentropy"],
    loss_weights=[0.25, 1.0, 10.0],
)
model.compile(
    optimizer="rmsprop",
    loss={"age": "mse", "income": "categorical_crossentropy", "gender": "binary_crossentropy"},
    loss_weights={"age": 0.25, "income": 1.0, "gender": 10.0},
)
model.fit(posts, [age_targets, income_targets, gender_targets], epochs=1, batch_size=32)
model.fit(
    posts,
    {"age": age_targets, "income": income_targets, "gender": gender_targets},
    epochs=1,
    batch_size=32,
)
