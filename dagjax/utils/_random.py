"""``set_random_seed``: one call that makes a program's random draws repeat, as Keras's."""

from __future__ import annotations

import random

import numpy as np

from dagjax._naming import set_default_seed


def set_random_seed(seed: int) -> None:
    """Seed Python's and numpy's global generators and dagjax's default seed.

    dagjax draws from explicit keys, never from global state: the default
    seed is the key ``Model.init`` (and so a model's first ``params``) and
    initializers use when given none, and ``compile``'s ``seed`` (Dropout's
    draws, the shuffles of ``fit``) when none is given. It is read when the
    weights are first made and when ``compile`` runs, so call this first.

    >>> set_random_seed(1337)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed))
    set_default_seed(int(seed))
