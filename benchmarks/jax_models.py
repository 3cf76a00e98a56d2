"""The workload models in hand-written JAX, with the ops Keras 3's JAX backend uses.

Each model is an ``(init, apply)`` pair: ``init(rng) -> (params, state)``
(numpy arrays from a numpy Generator: no per-op compiles, as a careful
hand-written baseline would do) and
``apply(params, state, x, training) -> (outputs, new_state)``, with ``x`` and
``outputs`` dicts keyed by the workload's names. Layouts and formulas follow
Keras: channels-last, HWIO kernels, glorot-uniform kernels, BatchNormalization
with batch statistics and a moving-average update (momentum 0.99, eps 1e-3).
The separable convolution uses the same ops as dagjax's, chosen per backend
as dagjax chooses them: on XLA:CPU the depthwise part is nine shifted
multiply-adds (a grouped convolution is several times slower there) and the
pointwise part a matmul; elsewhere a grouped convolution (as Keras).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from workloads import RESMLP_BLOCKS, RESMLP_WIDTH, VOCAB

relu, softmax, sigmoid = jax.nn.relu, jax.nn.softmax, jax.nn.sigmoid
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3


def glorot(rng, shape):
    """Keras's glorot_uniform: fans from the last two dims times the receptive field."""
    receptive = math.prod(shape[:-2])
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


def zeros(n):
    return np.zeros((n,), np.float32)


def dense_init(rng, n_in, n_out):
    return {"kernel": glorot(rng, (n_in, n_out)), "bias": zeros(n_out)}


def dense(p, x):
    return x @ p["kernel"] + p["bias"]


def conv_init(rng, kernel_size, c_in, c_out):
    return {"kernel": glorot(rng, (*kernel_size, c_in, c_out)), "bias": zeros(c_out)}


def _dims(x):
    return ("NWC", "WIO", "NWC") if x.ndim == 3 else ("NHWC", "HWIO", "NHWC")


def conv(kernel, x, strides=1, padding="VALID", groups=1):
    rank = x.ndim - 2
    return lax.conv_general_dilated(
        x, kernel, (strides,) * rank, padding, dimension_numbers=_dims(x), feature_group_count=groups
    )


def separable_init(rng, c_in, c_out):
    return {
        "depthwise_kernel": glorot(rng, (3, 3, c_in, 1)),
        "pointwise_kernel": glorot(rng, (1, 1, c_in, c_out)),
        "bias": zeros(c_out),
    }


def depthwise_shifted(kernel, x):
    """A 3x3 "same" depthwise convolution as one multiply-add per kernel offset over shifted slices."""
    n, height, width, c = x.shape
    padded = jnp.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    y = None
    for i in range(3):
        for j in range(3):
            patch = lax.slice(padded, (0, i, j, 0), (n, i + height, j + width, c))
            term = patch[..., None] * kernel[i, j]  # kernel (3, 3, c, 1): depth multiplier 1
            y = term if y is None else y + term
    return y.reshape(n, height, width, c)


def separable(p, x):
    """Depthwise 3x3, then pointwise 1x1, lowered per backend as dagjax's SeparableConv2D."""
    c_in = x.shape[-1]
    if jax.default_backend() == "cpu":
        h = depthwise_shifted(p["depthwise_kernel"], x)
        return h @ p["pointwise_kernel"].reshape(c_in, -1) + p["bias"]
    depthwise = p["depthwise_kernel"].reshape(3, 3, 1, c_in)
    h = conv(depthwise, x, padding="SAME", groups=c_in)
    return conv(p["pointwise_kernel"], h) + p["bias"]


def batch_norm_init(c):
    ones = np.ones((c,), np.float32)
    return {"gamma": ones, "beta": zeros(c)}, {"moving_mean": zeros(c), "moving_variance": ones}


def batch_norm(p, s, x, training):
    """Keras BatchNormalization over all but the channel axis; updates the moving stats in training."""
    axes = tuple(range(x.ndim - 1))
    if training:
        mean, var = jnp.mean(x, axes), jnp.var(x, axes)
        s = {
            "moving_mean": s["moving_mean"] * BN_MOMENTUM + mean * (1 - BN_MOMENTUM),
            "moving_variance": s["moving_variance"] * BN_MOMENTUM + var * (1 - BN_MOMENTUM),
        }
    else:
        mean, var = s["moving_mean"], s["moving_variance"]
    inv = lax.rsqrt(var + BN_EPSILON) * p["gamma"]
    return x * inv + (p["beta"] - mean * inv), s


def mlp_init(rng):
    return {"d0": dense_init(rng, 784, 512), "d1": dense_init(rng, 512, 512),
            "probs": dense_init(rng, 512, 10)}, {}


def mlp_apply(p, s, x, training):
    h = relu(dense(p["d1"], relu(dense(p["d0"], x["pixels"]))))
    return {"probs": softmax(dense(p["probs"], h))}, s


def multi_io_init(rng):
    params = {
        "embedding": rng.uniform(-0.05, 0.05, (VOCAB, 64)).astype(np.float32),
        "conv1d": conv_init(rng, (5,), 64, 128),
        "meta": dense_init(rng, 32, 64),
        "age": dense_init(rng, 192, 1),
        "income": dense_init(rng, 192, 10),
        "gender": dense_init(rng, 192, 1),
    }
    return params, {}


def multi_io_apply(p, s, x, training):
    t = jnp.take(p["embedding"], x["text"], axis=0)
    t = relu(conv(p["conv1d"]["kernel"], t) + p["conv1d"]["bias"])
    h = jnp.concatenate([jnp.max(t, axis=1), relu(dense(p["meta"], x["meta"]))], -1)
    out = {"age": dense(p["age"], h), "income": softmax(dense(p["income"], h)),
           "gender": sigmoid(dense(p["gender"], h))}
    return out, s


CNN_FILTERS = (32, 64)


def cnn_init(rng):
    params, state, c_in = {}, {}, 3
    for i, f in enumerate(CNN_FILTERS):
        params[f"conv{i}"] = conv_init(rng, (3, 3), c_in, f)
        params[f"bn{i}"], state[f"bn{i}"] = batch_norm_init(f)
        params[f"sep{i}"] = separable_init(rng, f, 2 * f)
        c_in = 2 * f
    params["probs"] = dense_init(rng, c_in, 10)
    return params, state


def cnn_apply(p, s, x, training):
    h, new_state = x["image"], {}
    for i in range(len(CNN_FILTERS)):
        h = conv(p[f"conv{i}"]["kernel"], h, strides=2, padding="SAME") + p[f"conv{i}"]["bias"]
        h, new_state[f"bn{i}"] = batch_norm(p[f"bn{i}"], s[f"bn{i}"], h, training)
        h = relu(separable(p[f"sep{i}"], relu(h)))
    return {"probs": softmax(dense(p["probs"], jnp.mean(h, axis=(1, 2))))}, new_state


def conv_im2col(kernel, x):
    """A "valid", stride-1 convolution as one matmul of the stacked shifted slices (im2col)."""
    n, height, width, c = x.shape
    kh, kw = kernel.shape[:2]
    out_h, out_w = height - kh + 1, width - kw + 1
    patches = [lax.slice(x, (0, i, j, 0), (n, i + out_h, j + out_w, c)) for i in range(kh) for j in range(kw)]
    return jnp.concatenate(patches, -1) @ kernel.reshape(-1, kernel.shape[-1])


def depthwise_valid(kernel, x):
    """A 3x3 "valid" depthwise convolution (multiplier 1) as nine shifted multiply-adds."""
    n, height, width, c = x.shape
    y = None
    for i in range(3):
        for j in range(3):
            term = lax.slice(x, (0, i, j, 0), (n, i + height - 2, j + width - 2, c)) * kernel[i, j, :, 0]
            y = term if y is None else y + term
    return y


def max_pool(x):
    """2x2 max pooling, stride 2, "valid" (Keras's MaxPooling2D default)."""
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


CNN_FULL_CHANNELS = ((3, 32), (32, 64), (64, 128))  # Conv2D, then the two SeparableConv2D


def cnn_full_init(rng):
    (c0, c1), sep = CNN_FULL_CHANNELS[0], CNN_FULL_CHANNELS[1:]
    params = {"conv": conv_init(rng, (3, 3), c0, c1)}
    state = {}
    params["bn0"], state["bn0"] = batch_norm_init(c1)
    for i, (c_in, c_out) in enumerate(sep, start=1):
        params[f"sep{i}"] = separable_init(rng, c_in, c_out)
        params[f"bn{i}"], state[f"bn{i}"] = batch_norm_init(c_out)
    params["probs"] = dense_init(rng, sep[-1][1], 10)
    return params, state


def cnn_full_apply(p, s, x, training, conv_lowering="xla"):
    """The full-resolution CNN; ``conv_lowering`` "xla" (Keras's ops) or "im2col" for the plain Conv2D.

    The depthwise parts are shifted multiply-adds on XLA:CPU either way (a grouped convolution is
    several times slower there), a grouped convolution elsewhere.
    """
    new_state = {}
    if conv_lowering == "im2col":
        h = conv_im2col(p["conv"]["kernel"], x["image"]) + p["conv"]["bias"]
    else:
        h = conv(p["conv"]["kernel"], x["image"]) + p["conv"]["bias"]
    h, new_state["bn0"] = batch_norm(p["bn0"], s["bn0"], h, training)
    for i in (1, 2):
        sep = p[f"sep{i}"]
        c_in = h.shape[-1]
        if jax.default_backend() == "cpu":
            h = depthwise_valid(sep["depthwise_kernel"], h)
        else:
            h = conv(sep["depthwise_kernel"].reshape(3, 3, 1, c_in), h, groups=c_in)
        h = h @ sep["pointwise_kernel"].reshape(c_in, -1) + sep["bias"]
        h, new_state[f"bn{i}"] = batch_norm(p[f"bn{i}"], s[f"bn{i}"], h, training)
        if i == 1:
            h = max_pool(h)
    return {"probs": softmax(dense(p["probs"], jnp.mean(h, axis=(1, 2))))}, new_state


def resmlp_init(rng):
    params = {"stem": dense_init(rng, 64, RESMLP_WIDTH)}
    params["blocks"] = [dense_init(rng, RESMLP_WIDTH, RESMLP_WIDTH) for _ in range(RESMLP_BLOCKS)]
    params["probs"] = dense_init(rng, RESMLP_WIDTH, 10)
    return params, {}


def resmlp_apply(p, s, x, training):
    h = relu(dense(p["stem"], x["features"]))
    for block in p["blocks"]:
        h = h + jnp.tanh(dense(block, h))
    return {"probs": softmax(dense(p["probs"], h))}, s


MODELS = {
    "mlp": (mlp_init, mlp_apply),
    "multi_io": (multi_io_init, multi_io_apply),
    "cnn": (cnn_init, cnn_apply),
    "cnn_full": (cnn_full_init, cnn_full_apply),
    "resmlp": (resmlp_init, resmlp_apply),
}
