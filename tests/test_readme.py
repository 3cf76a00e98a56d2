"""The README's code runs as written (with small data for the names it leaves to the reader)."""

import pathlib
import re

import numpy as np

import dagjax as dj
from dagjax import layers

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_readme_snippets_run_as_written(tmp_path, monkeypatch):
    n, rng = 64, np.random.default_rng(0)
    data = {
        "t": rng.integers(0, 10_000, (n, 12)).astype("int32"),
        "m": rng.normal(size=(n, 32)).astype("float32"),
        "a": rng.normal(size=(n, 1)).astype("float32"),
        "i": np.eye(10, dtype="float32")[rng.integers(0, 10, n)],
        "g": rng.integers(0, 2, (n, 1)).astype("float32"),
    }
    namespace = dict(data)
    model_snippet, research_snippet, same_step_snippet, export_snippet = SNIPPETS[:4]
    exec(model_snippet.replace("epochs=10", "epochs=1, verbose=0"), namespace)
    assert set(namespace["history"].history) >= {"loss", "val_loss", "val_income_accuracy"}
    namespace["batches"] = [({"text": data["t"], "meta": data["m"]}, [data["a"], data["i"], data["g"]])] * 2
    exec(research_snippet, namespace)
    assert int(namespace["ts"].step) == 2 and np.isfinite(float(namespace["logs"]["loss"]))
    exec(same_step_snippet, namespace)
    assert not np.array_equal(namespace["start"][0], namespace["fitted"][0])  # fit trained
    for fitted, pure in zip(namespace["fitted"], namespace["model"].get_weights(), strict=True):
        np.testing.assert_array_equal(pure, fitted)
    monkeypatch.chdir(tmp_path)
    exec(export_snippet, namespace)
    predicted = namespace["model"].predict({"text": data["t"], "meta": data["m"]}, verbose=0)
    exported = [namespace[name] for name in ("age", "income", "gender")]
    for got, expected in zip(exported, predicted, strict=True):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)


def test_the_ensemble_snippet_runs_as_written(tmp_path, monkeypatch):
    (snippet,) = [s for s in SNIPPETS if "dj.ensemble.fit_weights" in s]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 3, 32)

    def member(name):
        inputs = dj.Input((4,), name="x")
        return dj.Model(inputs, layers.Dense(3, activation="softmax")(inputs), name=name)

    data = {"x_val": x, "y_val": y, "x_test": x, "y_test": y}
    namespace = {"dj": dj, "members": [member("a"), member("b")], **data}
    monkeypatch.chdir(tmp_path)
    exec(snippet, namespace)
    assert abs(sum(namespace["weights"]) - 1.0) < 1e-9
    assert (tmp_path / "ensemble.dj").is_file()


def test_the_readme_population_snippets_run_as_written():
    import jax

    (population_snippet,) = [s for s in SNIPPETS if "population.Population(" in s]
    (step_snippet,) = [s for s in SNIPPETS if "jax.jit(pop.train_step)" in s]
    namespace = {"jax": jax}
    exec(population_snippet, namespace)
    lengths = [len(h["loss"]) for h in namespace["histories"]]
    assert sorted(lengths) == [2, 2, 4, 4]  # two members pruned after the second epoch
    exec(step_snippet, namespace)
    assert namespace["logs"]["loss"].shape == (4,) and namespace["ps"].train.step.tolist() == [1, 1, 0, 1]


def test_the_custom_step_snippet_trains_and_clips():
    import jax
    import jax.numpy as jnp
    import optax

    (snippet,) = [s for s in SNIPPETS if "def train_step(self, train_state, batch, rng)" in s]
    namespace = {"dj": dj, "layers": layers, "jax": jax, "jnp": jnp, "optax": optax}
    exec(snippet, namespace)
    model = namespace["Clipped"]()
    model.compile(optax.sgd(1e-2), "mse")
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    history = model.fit(x, 100 * x[:, :1], epochs=2, batch_size=4, verbose=0).history  # large grads: clipped
    assert len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
