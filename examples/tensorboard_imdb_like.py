"""TensorBoard on an IMDB-like text classifier: the chapter's listing, on synthetic reviews.

A Sequential model (Embedding named ``embed``, Conv1D / MaxPooling1D /
Conv1D / GlobalMaxPooling1D, Dense) reads token sequences and predicts a
binary sentiment. The data is synthetic: each review mixes neutral tokens
with eight "positive" (ids 2-21) or "negative" (ids 22-41) words, so the
loss visibly falls. ``fit`` runs with ``callbacks.TensorBoard(histogram_freq=1,
embeddings_freq=1)`` and ``validation_split=0.2``, then ``plot_model`` draws
the graph. Run it, then open TensorBoard on the printed log folder::

    python examples/tensorboard_imdb_like.py --logdir logs/imdb_like
    tensorboard --logdir logs/imdb_like
"""

import argparse
import os

import numpy as np

import dagjax as dj
from dagjax import callbacks, layers

MAX_FEATURES, MAX_LEN = 2000, 100


def synthetic_reviews(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences and labels: a positive review holds positive words, a negative one negative words."""
    rng = np.random.default_rng(seed)
    x = rng.integers(200, MAX_FEATURES, (samples, MAX_LEN)).astype("int32")
    y = rng.integers(0, 2, samples).astype("float32")
    for row, label in enumerate(y):
        slots = rng.choice(MAX_LEN, 8, replace=False)
        x[row, slots] = rng.integers(2, 22, 8) + (0 if label else 20)
    return x, y[:, None]


def build_model(embed_dim: int = 32, filters: int = 16) -> dj.Sequential:
    """The chapter's model, with the sigmoid that binary cross-entropy on probabilities needs."""
    return dj.Sequential(
        [
            dj.Input((MAX_LEN,), dtype="int32", name="words"),
            layers.Embedding(MAX_FEATURES, embed_dim, name="embed"),
            layers.Conv1D(filters, 7, activation="relu"),
            layers.MaxPooling1D(5),
            layers.Conv1D(filters, 7, activation="relu"),
            layers.GlobalMaxPooling1D(),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="imdb_like",
    )


def word_metadata(path: str) -> None:
    """One label per embedding row (the Projector's metadata file): the kind of word each id is."""
    kinds = ["padding", "unknown"] + ["positive"] * 20 + ["negative"] * 20 + ["unused"] * 158
    kinds += ["neutral"] * (MAX_FEATURES - len(kinds))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(kinds) + "\n")


def main(log_dir: str = "logs/imdb_like", epochs: int = 4, samples: int = 2000, batch_size: int = 128):
    """Train with TensorBoard logging, plot the model; returns the model and its History."""
    x, y = synthetic_reviews(samples)
    model = build_model()
    model.summary()
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    os.makedirs(log_dir, exist_ok=True)
    word_metadata(os.path.join(log_dir, "words.tsv"))
    tensorboard = callbacks.TensorBoard(
        log_dir=log_dir, histogram_freq=1, embeddings_freq=1, embeddings_metadata={"embed": "words.tsv"}
    )
    history = model.fit(
        x, y, epochs=epochs, batch_size=batch_size, validation_split=0.2, callbacks=[tensorboard], verbose=2
    )
    try:
        dj.utils.plot_model(model, show_shapes=True, to_file=os.path.join(log_dir, "model.png"))
        print(f"Model plot: {os.path.join(log_dir, 'model.png')}")
    except ImportError as err:  # Graphviz is not installed: the DOT source was written instead
        print(err)
    print(f"TensorBoard logs: {log_dir}  (view them with: tensorboard --logdir {log_dir})")
    return model, history


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="logs/imdb_like")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    main(args.logdir, args.epochs, args.samples)
