"""The chapter's multi-output example: the age / income / gender model, trained end to end.

The model reads a token sequence and a vector of metadata, and predicts an
age (regression), an income bracket (10 classes) and a gender (binary) at
once, trained on a loss-weighted sum of the three losses (0.25 / 1 / 10). It
is trained twice: with the Keras façade (compile, fit with a validation
split, evaluate, predict), then from scratch with the pure ``build_trainer``
step in a plain loop. The data is synthetic, with targets that depend on the
inputs, so the losses visibly fall. ``make demo`` runs it, as does
``python examples/multi_output.py``.
"""

import time

import jax
import numpy as np

import dagjax as dj
from dagjax import layers
from dagjax.training import build_trainer

VOCAB, SEQ_LEN, SAMPLES, EPOCHS, BATCH = 1000, 24, 2048, 8, 64
LOSS = {"age": "mse", "income": "categorical_crossentropy", "gender": "binary_crossentropy"}
LOSS_WEIGHTS = {"age": 0.25, "income": 1.0, "gender": 10.0}


def build_model() -> dj.Model:
    """The functional graph of DESIGN.md: Embedding + Conv1D over text, Dense over metadata."""
    text = dj.Input(shape=(None,), dtype="int32", name="text")
    meta = dj.Input(shape=(32,), name="meta")
    x = layers.Embedding(VOCAB, 32)(text)
    x = layers.Conv1D(64, 5, activation="relu")(x)
    x = layers.GlobalMaxPooling1D()(x)
    m = layers.Dense(64, activation="relu")(meta)
    h = layers.concatenate([x, m])
    age = layers.Dense(1, name="age")(h)
    income = layers.Dense(10, activation="softmax", name="income")(h)
    gender = layers.Dense(1, activation="sigmoid", name="gender")(h)
    return dj.Model([text, meta], [age, income, gender])


def synthetic_data(n: int, seed: int = 0) -> tuple[dict, dict]:
    """Inputs and targets with a learnable link between them."""
    rng = np.random.default_rng(seed)
    text = rng.integers(0, VOCAB, (n, SEQ_LEN)).astype("int32")
    meta = rng.normal(size=(n, 32)).astype("float32")
    signal = meta[:, :4].sum(axis=1) + (text < 100).mean(axis=1) * 8.0
    age = (signal + 0.1 * rng.normal(size=n)).astype("float32")[:, None]
    income = np.eye(10, dtype="float32")[np.digitize(signal, np.quantile(signal, np.linspace(0.1, 0.9, 9)))]
    gender = (meta[:, 5] > 0).astype("float32")[:, None]
    return {"text": text, "meta": meta}, {"age": age, "income": income, "gender": gender}


def main(samples: int = SAMPLES, epochs: int = EPOCHS) -> dict[str, list[float]]:
    """Train with ``fit``, then with the pure step; return both loss curves (``val_loss``, ``pure_loss``)."""
    start = time.perf_counter()
    model = build_model()
    model.summary()
    x, y = synthetic_data(samples)

    # The Keras façade: compile, fit with a validation split, evaluate, predict.
    model.compile(
        optimizer="rmsprop",
        loss=LOSS,
        loss_weights=LOSS_WEIGHTS,
        metrics={"income": ["accuracy"], "gender": ["accuracy"]},
    )
    history = model.fit(x, y, epochs=epochs, batch_size=BATCH, validation_split=0.2)
    val_loss = history.history["val_loss"]
    print(f"val_loss: {val_loss[0]:.4f} after epoch 1 -> {val_loss[-1]:.4f} after epoch {epochs}")
    results = model.evaluate(x, y, batch_size=256, return_dict=True, verbose=0)
    print("evaluate:", {k: round(v, 4) for k, v in results.items()})
    age, income, gender = model.predict({"text": x["text"][:5], "meta": x["meta"][:5]}, verbose=0)
    print("predicted income brackets:", income.argmax(axis=1), "true:", y["income"][:5].argmax(axis=1))

    # The same training as pure functions, from fresh weights: a train state pytree and a jitted step.
    trainer = build_trainer(model, LOSS, "rmsprop", loss_weights=LOSS_WEIGHTS)
    state = trainer.init_train_state(*model.init(jax.random.key(1)))
    step = jax.jit(trainer.train_step, donate_argnums=0)
    pure_loss = []
    for epoch in range(epochs):
        state = trainer.reset_metrics(state)  # logs are running means over the epoch, as in fit
        for i in range(0, samples - BATCH + 1, BATCH):
            rows = slice(i, i + BATCH)
            batch = ({k: v[rows] for k, v in x.items()}, {k: v[rows] for k, v in y.items()}, None)
            state, logs = step(state, batch, jax.random.key(epoch * samples + i))
        pure_loss.append(float(logs["loss"]))
    print(f"pure loop loss: {pure_loss[0]:.4f} after epoch 1 -> {pure_loss[-1]:.4f} after epoch {epochs}")
    print(f"done in {time.perf_counter() - start:.1f}s")
    return {"val_loss": val_loss, "pure_loss": pure_loss}


if __name__ == "__main__":
    main()
