"""The README's code runs as written (with small data for the names it leaves to the reader)."""

import pathlib
import re

import numpy as np

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.S)


def test_the_readme_snippets_run_as_written():
    n, rng = 64, np.random.default_rng(0)
    data = {
        "t": rng.integers(0, 10_000, (n, 12)).astype("int32"),
        "m": rng.normal(size=(n, 32)).astype("float32"),
        "a": rng.normal(size=(n, 1)).astype("float32"),
        "i": np.eye(10, dtype="float32")[rng.integers(0, 10, n)],
        "g": rng.integers(0, 2, (n, 1)).astype("float32"),
    }
    namespace = dict(data)
    model_snippet, research_snippet, same_step_snippet = SNIPPETS[:3]
    exec(model_snippet.replace("epochs=10", "epochs=1, verbose=0"), namespace)
    assert set(namespace["history"].history) >= {"loss", "val_loss", "val_income_accuracy"}
    namespace["batches"] = [({"text": data["t"], "meta": data["m"]}, [data["a"], data["i"], data["g"]])] * 2
    exec(research_snippet, namespace)
    assert int(namespace["ts"].step) == 2 and np.isfinite(float(namespace["logs"]["loss"]))
    exec(same_step_snippet, namespace)
    assert not np.array_equal(namespace["start"][0], namespace["fitted"][0])  # fit trained
    for fitted, pure in zip(namespace["fitted"], namespace["model"].get_weights(), strict=True):
        np.testing.assert_array_equal(pure, fitted)


def test_the_readme_population_snippets_run_as_written():
    import jax

    population_snippet, step_snippet = SNIPPETS[3:5]
    namespace = {"jax": jax}
    exec(population_snippet, namespace)
    lengths = [len(h["loss"]) for h in namespace["histories"]]
    assert sorted(lengths) == [2, 2, 4, 4]  # two members pruned after the second epoch
    exec(step_snippet, namespace)
    assert namespace["logs"]["loss"].shape == (4,) and namespace["ps"].train.step.tolist() == [1, 1, 0, 1]
