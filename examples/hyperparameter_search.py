"""Search an MLP's width, dropout and learning rate on scikit-learn's digits with ``dagjax.tuners``.

The search lives in ``tuning/digits/study.db``. Stop it (Ctrl-C) and run the
script again: it resumes, re-running the trial that was cut short. Run it in
two terminals at once: the two processes share the trials. Watch it live with
``optuna-dashboard sqlite:///tuning/digits/study.db``; ``--overwrite`` starts afresh.
"""

import argparse

import numpy as np
import optax
from sklearn.datasets import load_digits

import dagjax as dj
from dagjax import callbacks, layers, tuners


def build(hp: tuners.HyperParameters) -> dj.Model:
    """An MLP whose width, dropout and learning rate come from ``hp``."""
    inp = dj.Input((64,))
    x = layers.Dense(hp.Int("units", 16, 128, step=16), activation="relu")(inp)
    x = layers.Dropout(hp.Float("dropout", 0.0, 0.5))(x)
    model = dj.Model(inp, layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=optax.adam(hp.Float("lr", 1e-4, 1e-1, sampling="log")),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(max_trials: int = 12, epochs: int = 8, directory: str = "tuning", overwrite: bool = False) -> dict:
    """Search, then evaluate the best model on held-out digits; returns what it found."""
    data = load_digits()
    x, y = (data.data / 16).astype("float32"), data.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1400], order[1400:]

    tuner = tuners.RandomSearch(build, objective="val_accuracy", max_trials=max_trials, seed=0,
                                directory=directory, project_name="digits", overwrite=overwrite)
    tuner.search_space_summary()
    tuner.search(x[train], y[train], epochs=epochs, batch_size=64, validation_split=0.2,
                 callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=2)])
    tuner.results_summary(3)

    best_hp = tuner.get_best_hyperparameters(1)[0]
    model = tuner.get_best_models(1)[0]  # the best trial's weights, ready to predict
    test_accuracy = model.evaluate(x[test], y[test], verbose=0, return_dict=True)["accuracy"]
    print(f"\nBest hyperparameters: {best_hp.values}")
    print(f"Held-out accuracy of the best model: {test_accuracy:.3f}")
    return {"best": best_hp.values, "test_accuracy": test_accuracy, "trials": tuner.study.trials}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--overwrite", action="store_true", help="forget the study and start afresh")
    args = parser.parse_args()
    main(args.max_trials, args.epochs, overwrite=args.overwrite)
