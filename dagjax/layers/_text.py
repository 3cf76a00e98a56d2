"""String preprocessing layers, which dagjax refuses with the way to do the same.

dagjax compiles a whole model into one XLA program, and XLA has no string
type: a layer that takes strings cannot be a node of that program. Running
such a layer on the host before the program would need a second, uncompiled
kind of node and a data path that feeds it, which the design leaves out on
purpose (one compiled program per step). So these names exist, as Keras's,
to fail at construction with the dagjax way: turn text into integer ids on
the host, then feed the ids to the model.
"""

from __future__ import annotations

from typing import Any

from dagjax.layers._base import Layer

_HOW = (
    "dagjax compiles the whole model into one XLA program, which cannot hold strings. Map strings to "
    "integer ids on the host before the model (for example ids = np.vectorize(vocab_index.get)(texts) "
    "with a dict of your vocabulary, or tokenise in your data pipeline), then feed the ids to "
    "dj.Input(shape=..., dtype='int32') followed by layers.IntegerLookup / layers.Embedding inside the model."
)


class StringLookup(Layer):
    """Not available: strings cannot enter the compiled program (the error says what to do instead)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"StringLookup is not supported: {_HOW}")


class TextVectorization(Layer):
    """Not available: strings cannot enter the compiled program (the error says what to do instead)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"TextVectorization is not supported: {_HOW}")
