"""Whether folding an elementwise activation into the layer that produces its input changes the program.

    cd benchmarks && PYTHONPATH=.. ../.venv/bin/python activation_folding.py

For a Conv2D and a Dense, each lowering forced in turn, builds the model with
the activation folded (``Conv2D(..., activation="relu")``) and unfolded
(``Conv2D(...)`` then ``Activation("relu")``), and compares the training
gradient's program twice: as handed to XLA (StableHLO, what every backend
compiles) and as compiled for this backend (optimised HLO), source locations
and debug tables left out (a control row compares against a different
activation, which must differ). Identical programs run identically: a graph
pass that folds the activation could not gain on any XLA backend.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np

import dagjax as dj

X = np.ones((4, 16, 16, 3), "float32")


def build(kind: str, folded: bool, name: str = "relu") -> dj.Model:
    layers = dj.layers
    x = dj.Input(X.shape[1:])
    activation = name if folded else None
    if kind == "conv":
        h = layers.Conv2D(8, 3, activation=activation, name="producer")(x)
    else:
        h = layers.Dense(8, activation=activation, name="producer")(layers.Flatten()(x))
    if not folded:
        h = layers.Activation(name)(h)
    return dj.Model(x, layers.Dense(2, name="out")(layers.Flatten()(h) if kind == "conv" else h))


def programs(model: dj.Model) -> tuple[str, str]:
    """The gradient's StableHLO and compiled HLO, without locations, names or debug tables."""

    def loss(params):
        out, _ = model.apply(params, model.state, X, training=True)
        return jnp.sum(out**2)

    lowered = jax.jit(jax.grad(loss)).lower(model.params)
    stablehlo = re.sub(r"loc\([^()]*(\([^()]*\))*[^()]*\)", "", lowered.as_text(debug_info=False))
    stablehlo = "\n".join(line for line in stablehlo.splitlines() if not line.startswith("#loc"))
    lines = lowered.compile().as_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("{") and "->" in line)
    hlo = re.sub(r"metadata=\{[^}]*\}|, stack_frame_id=\d+", "", "\n".join(lines[start:]))
    return stablehlo, hlo


def main() -> None:
    print(f"{jax.default_backend()} {jax.devices()[0].device_kind}, jax {jax.__version__}")
    for kind in ("conv", "dense"):
        for lowering in ("xla", "im2col", "shifted"):
            dj.config.lowering.force = lowering
            folded, unfolded = programs(build(kind, True)), programs(build(kind, False))
            same = ["identical" if a == b else "DIFFERENT" for a, b in zip(folded, unfolded)]
            print(f"{kind:5s} {lowering:8s} StableHLO {same[0]}, compiled {same[1]}")
        control = programs(build(kind, False, "tanh"))  # a different activation: must differ
        same = ["identical" if a == b else "different" for a, b in zip(folded, control)]
        print(f"{kind:5s} control (relu folded, tanh unfolded): StableHLO {same[0]}, compiled {same[1]}")


if __name__ == "__main__":
    main()
