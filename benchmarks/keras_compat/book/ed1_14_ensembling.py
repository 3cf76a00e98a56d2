"""DLwP 1st ed., ch. 7.3.3: ensembling four classifiers by a plain and a weighted average of their predictions.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports; four
small dense classifiers on random data stand in for the chapter's `model_a` ... `model_d`.
"""

import numpy as np
from keras import layers
from keras.models import Sequential

x_train = np.random.random((128, 10))
y_train = np.random.randint(0, 3, size=(128,))
x_val = np.random.random((32, 10))


def classifier(units):
    model = Sequential([layers.Dense(units, activation="relu"), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=1, verbose=0)
    return model


model_a, model_b, model_c, model_d = (classifier(units) for units in (4, 8, 16, 32))

preds_a = model_a.predict(x_val)
preds_b = model_b.predict(x_val)
preds_c = model_c.predict(x_val)
preds_d = model_d.predict(x_val)
final_preds = 0.25 * (preds_a + preds_b + preds_c + preds_d)
final_preds = 0.5 * preds_a + 0.25 * preds_b + 0.1 * preds_c + 0.15 * preds_d
assert final_preds.shape == (32, 3)
np.testing.assert_allclose(final_preds.sum(axis=1), 1.0, rtol=1e-5)
