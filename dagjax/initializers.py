"""Weight initializers with Keras names, defaults and fan rules.

An initializer is any callable ``(key, shape, dtype) -> array``. The classes
here also carry ``get_config`` so model files can record them, and draw their
values with numpy on the host (see :class:`Initializer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax._naming import default_seed, function_name


def compute_fans(shape: tuple) -> tuple[float, float]:
    """Keras's fan-in / fan-out: kernels are ``(*receptive_field, in, out)``."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def is_traced(x: Any) -> bool:
    """Whether ``x`` is an abstract value being traced (under ``jit``), not a concrete array."""
    return isinstance(x, jax.core.Tracer)


class Initializer:
    """Base: ``sample`` draws with numpy; ``get_config`` returns the constructor args.

    Random draws run on the host with numpy, seeded from the key's bits: no
    random-number kernels to compile (compiling them dominated model build
    time on CPU), same values under ``jit`` (through ``jax.pure_callback``)
    and outside it (directly, compiling nothing at all).
    """

    def sample(self, generator: np.random.Generator, shape: tuple) -> np.ndarray:
        """Values of ``shape`` drawn from ``generator`` (cast to dtype later); random subclasses define it."""
        raise NotImplementedError

    def __call__(self, key: jax.Array | None, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        """The ``(key, shape, dtype) -> array`` initializer contract, seeded by the key's words.

        A ``None`` key stands for the key ``Model.init`` uses when given none
        (``jax.random.key(default_seed())``): the same values on every call, never an error.
        """
        if key is None:
            key = jax.random.key(default_seed())
        return self.from_seed(key_words(key), shape, dtype)

    def from_seed(
        self, words: np.ndarray | jax.Array | None, shape: Sequence[int], dtype: Any = jnp.float32
    ) -> jax.Array:
        """Values drawn from a numpy generator seeded by ``words`` (uint32s)."""
        shape, dtype = tuple(shape), np.dtype(dtype)

        def draw(seed):
            generator = np.random.default_rng(np.asarray(seed, np.uint32).tolist())
            return np.asarray(self.sample(generator, shape), dtype=dtype)

        if not is_traced(words):
            return jax.device_put(draw(words))
        return jax.pure_callback(draw, jax.ShapeDtypeStruct(shape, dtype), words, vmap_method="sequential")

    def get_config(self) -> dict:
        """The instance attributes, which the built-in initializers name after their constructor arguments."""
        return dict(vars(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def key_words(key: jax.Array, tag: int | None = None) -> np.ndarray | jax.Array:
    """The uint32 words of a JAX key (typed or raw), optionally followed by ``tag``."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    xp = jnp if is_traced(key) else np  # a concrete key: numpy, so no op is compiled
    words = xp.ravel(xp.asarray(key)).astype(xp.uint32)
    if tag is not None:
        words = xp.concatenate([words, xp.array([tag], xp.uint32)])
    return words


class Constant(Initializer):
    """Every entry ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def from_seed(
        self, words: np.ndarray | jax.Array | None, shape: Sequence[int], dtype: Any = jnp.float32
    ) -> jax.Array:
        """A filled array; the seed is ignored, and under ``jit`` it is ``jnp.full`` (no host callback)."""
        if is_traced(words):
            return jnp.full(tuple(shape), self.value, dtype)
        return jax.device_put(np.full(tuple(shape), self.value, dtype))


class Zeros(Constant):
    """Every entry 0."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def get_config(self) -> dict:
        """Empty, as Keras's: the value is fixed, so ``value`` is not recorded."""
        return {}


class Ones(Constant):
    """Every entry 1."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def get_config(self) -> dict:
        """Empty, as Keras's: the value is fixed, so ``value`` is not recorded."""
        return {}


def _truncated_normal(generator: np.random.Generator, shape: tuple) -> np.ndarray:
    """Unit normal redrawn outside [-2, 2], as Keras's truncated normal."""
    values = generator.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = generator.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values


class RandomNormal(Initializer):
    """Normal with Keras's defaults, mean 0 and stddev 0.05."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean, self.stddev = mean, stddev

    def sample(self, generator: np.random.Generator, shape: tuple) -> np.ndarray:
        """``mean + stddev * N(0, 1)``."""
        return self.mean + self.stddev * generator.standard_normal(shape)


class RandomUniform(Initializer):
    """Uniform on ``[minval, maxval)``, Keras's default ``[-0.05, 0.05)``."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval, self.maxval = minval, maxval

    def sample(self, generator: np.random.Generator, shape: tuple) -> np.ndarray:
        """Uniform draws on ``[minval, maxval)``."""
        return generator.uniform(self.minval, self.maxval, shape)


class TruncatedNormal(Initializer):
    """Normal cut at two standard deviations, as Keras."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean, self.stddev = mean, stddev

    def sample(self, generator: np.random.Generator, shape: tuple) -> np.ndarray:
        """``mean + stddev * z``, with ``z`` a unit normal redrawn outside [-2, 2] (stddev not rescaled)."""
        return self.mean + self.stddev * _truncated_normal(generator, shape)


class VarianceScaling(Initializer):
    """Scale / fan variance; the family behind glorot, he and lecun."""

    def __init__(
        self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal"
    ) -> None:
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling mode must be fan_in, fan_out or fan_avg, got {mode!r}.")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "VarianceScaling distribution must be truncated_normal, untruncated_normal "
                f"or uniform, got {distribution!r}."
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def sample(self, generator: np.random.Generator, shape: tuple) -> np.ndarray:
        """Variance ``scale / max(1, fan)``; a truncated normal's stddev corrected for the cut, as Keras."""
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return generator.uniform(-limit, limit, shape)
        if self.distribution == "untruncated_normal":
            return math.sqrt(variance) * generator.standard_normal(shape)
        stddev = math.sqrt(variance) / 0.87962566103423978  # std of a unit normal cut at +-2
        return stddev * _truncated_normal(generator, shape)


def _variance_scaling(name: str, scale: float, mode: str, distribution: str) -> type:
    def __init__(self) -> None:
        VarianceScaling.__init__(self, scale, mode, distribution)

    def get_config(self) -> dict:
        """Empty, as Keras's: the class fixes scale, mode and distribution."""
        return {}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config})


GlorotUniform = _variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _variance_scaling("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance_scaling("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    """A (scaled) orthogonal matrix over the flattened leading dims, as Keras."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def sample(self, generator: np.random.Generator, shape: tuple) -> np.ndarray:
        """Q of the QR of a normal matrix (signs fixed by R's diagonal), times ``gain``, reshaped."""
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, got {shape}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        q, r = np.linalg.qr(generator.standard_normal((max(rows, cols), min(rows, cols))))
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)


class Identity(Initializer):
    """``gain`` times the identity matrix (2D shapes only)."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def from_seed(
        self, words: np.ndarray | jax.Array | None, shape: Sequence[int], dtype: Any = jnp.float32
    ) -> jax.Array:
        """``gain * eye(*shape)``; the seed is ignored, and under ``jit`` it is ``jnp.eye`` (no callback)."""
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2D shape, got {tuple(shape)}.")
        if is_traced(words):
            return self.gain * jnp.eye(*shape, dtype=dtype)
        return jax.device_put(np.asarray(self.gain * np.eye(*shape), dtype))


INITIALIZERS: dict[str, type] = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "normal": RandomNormal,
    "random_uniform": RandomUniform,
    "uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform,
    "he_normal": HeNormal,
    "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal,
    "identity": Identity,
}
_CLASS_NAMES = {cls.__name__: cls for cls in INITIALIZERS.values()}


def get(identifier: str | Callable | dict | None) -> Callable:
    """An initializer from a Keras name, a ``{"class_name", "config"}`` dict, or a callable."""
    if identifier is None:
        return Zeros()
    if isinstance(identifier, dict):
        cls = _CLASS_NAMES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown initializer class {identifier.get('class_name')!r}.")
        return cls(**identifier.get("config", {}))
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in INITIALIZERS:
            return INITIALIZERS[key]()
        if identifier in _CLASS_NAMES:
            return _CLASS_NAMES[identifier]()
        raise ValueError(
            f"Unknown initializer {identifier!r}. Valid names: {', '.join(INITIALIZERS)}, "
            "or pass a callable (key, shape, dtype) -> array."
        )
    if isinstance(identifier, type):  # a class, as Keras's get: an instance with its defaults
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Cannot interpret {identifier!r} as an initializer.")


def serialize(init: Callable) -> dict | str:
    """``{"class_name", "config"}`` of a built-in initializer (as ``get`` reads it back); else its name."""
    if isinstance(init, Initializer):
        return {"class_name": type(init).__name__, "config": init.get_config()}
    return function_name(init, "initializer")
