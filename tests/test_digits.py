"""Training learns on real data: scikit-learn's bundled digits (no download), two inputs and two outputs."""

from sklearn.datasets import load_digits

import dagjax as dj
from dagjax import layers

# Accuracy on the held-out last 20% (writers not seen in training; chance is 0.1 and ~0.5) after EPOCHS
# epochs with compile(seed=0). fit is deterministic, so the model reaches digit 0.908 and over_four 0.933
# every run; the bars sit a few points under, for other platforms' float rounding.
EPOCHS = 15
MIN_DIGIT_ACCURACY = 0.87
MIN_OVER_FOUR_ACCURACY = 0.88


def two_halves_model() -> dj.Model:
    """Top and bottom halves of an 8x8 digit in, a shared trunk, the digit and whether it is over four out."""
    top = dj.Input((32,), name="top")
    bottom = dj.Input((32,), name="bottom")
    top_features = layers.Dense(64, activation="relu")(top)
    bottom_features = layers.Dense(64, activation="relu")(bottom)
    h = layers.concatenate([top_features, bottom_features])
    h = layers.Dense(128, activation="relu", name="trunk")(h)
    digit = layers.Dense(10, activation="softmax", name="digit")(h)
    over_four = layers.Dense(1, activation="sigmoid", name="over_four")(h)
    return dj.Model([top, bottom], [digit, over_four])


def test_two_input_two_output_model_learns_digits():
    images, labels = load_digits(return_X_y=True)  # 1797 x 64 pixels in 0..16, ordered by collection
    pixels = (images / 16.0).astype("float32")
    x = {"top": pixels[:, :32], "bottom": pixels[:, 32:]}
    y = {"digit": labels, "over_four": (labels > 4).astype("float32")[:, None]}
    model = two_halves_model()
    model.compile(
        "adam",
        loss={"digit": "sparse_categorical_crossentropy", "over_four": "binary_crossentropy"},
        metrics={"digit": ["accuracy"], "over_four": ["accuracy"]},
        seed=0,
    )
    # Keras's validation_split holds out the last 20% unshuffled: the digits were collected writer by writer.
    history = model.fit(x, y, epochs=EPOCHS, batch_size=32, validation_split=0.2, verbose=0).history
    assert set(history) >= {
        "loss", "digit_loss", "over_four_loss", "digit_accuracy", "over_four_accuracy",
        "val_loss", "val_digit_loss", "val_over_four_loss", "val_digit_accuracy", "val_over_four_accuracy",
    }  # fmt: skip
    assert all(len(v) == EPOCHS for v in history.values())
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert history["val_digit_accuracy"][-1] >= MIN_DIGIT_ACCURACY
    assert history["val_over_four_accuracy"][-1] >= MIN_OVER_FOUR_ACCURACY
