"""Forward + backward of a 3x3 "valid" depthwise convolution as shifted multiply-adds, three ways.

    cd benchmarks && PYTHONPATH=.. ../.venv/bin/python depthwise_forms.py

dagjax's ``depthwise_conv_shifted`` against the hand-written form of ``jax_models.depthwise_valid``
(multiplier 1) and, for multiplier 2, against repeating the input's channels to avoid the trailing
multiplier axis (the form not taken: slower there). Each: the first-quartile time of 30 runs of
the jitted gradient of ``sum(out ** 2)``, at 64x30x30x32 (cnn_full's first separable layer).
"""

from __future__ import annotations

import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax_models import depthwise_valid

from dagjax.layers._depthwise import depthwise_conv_shifted


def timed(f, *args, runs: int = 30) -> float:
    grad = jax.jit(jax.grad(lambda *a: jnp.sum(f(*a) ** 2), argnums=tuple(range(len(args)))))
    jax.block_until_ready(grad(*args))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        jax.block_until_ready(grad(*args))
        times.append(time.perf_counter() - start)
    return sorted(times)[runs // 4] * 1e3


def repeated_channels(x, kernel):
    """Multiplier m as the input's channels repeated m times, so no term has a trailing axis of m."""
    channels, multiplier = kernel.shape[-2:]
    n, height, width, _ = x.shape
    y = None
    for i, j in itertools.product(range(3), range(3)):
        patch = jnp.repeat(lax.slice(x, (0, i, j, 0), (n, i + height - 2, j + width - 2, channels)),
                           multiplier, axis=-1)
        term = patch * kernel[i, j].reshape(-1)
        y = term if y is None else y + term
    return y


def dagjax_form(x, kernel):
    return depthwise_conv_shifted(x, kernel, (1, 1), "valid", (1, 1), "channels_last")


rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(64, 30, 30, 32)).astype("float32"))
for multiplier, other, name in ((1, lambda x, k: depthwise_valid(k, x), "hand-written"),
                                (2, repeated_channels, "channels repeated")):
    kernel = jnp.asarray(rng.normal(size=(3, 3, 32, multiplier)).astype("float32"))
    np.testing.assert_array_equal(np.asarray(dagjax_form(x, kernel)), np.asarray(other(x, kernel)))
    print(f"multiplier {multiplier}: dagjax {timed(dagjax_form, x, kernel):.2f} ms, "
          f"{name} {timed(other, x, kernel):.2f} ms (outputs equal)")
