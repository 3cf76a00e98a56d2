"""Categorical preprocessing inside a model: CategoryEncoding, Hashing, IntegerLookup.

All run in the compiled program on integer tensors: lookups are a
``searchsorted`` into the vocabulary (a constant of the program), hashing is
integer arithmetic. A vocabulary from ``adapt`` is part of the layer's config,
so saving and loading keep it (Keras keeps it as an asset).

Keras 3 runs Hashing and IntegerLookup through TensorFlow (they raise
ImportError without it). dagjax's IntegerLookup gives Keras's indices
(``oov_method="floormod"``); its Hashing uses its own 32-bit integer hash,
not Keras's FarmHash64 of the decimal string, so the bins differ from Keras's
(``hash_integers`` says how).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.layers._adapt import adapt_batches
from dagjax.layers._base import Layer
from dagjax.layers._specs import TensorSpec

OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count")


def check_output_mode(layer: str, output_mode: str, sparse: bool = False) -> str:
    """``output_mode`` if dagjax has it; ``tf_idf`` and ``sparse=True`` are refused by name."""
    if sparse:
        raise NotImplementedError(
            f"{layer}(sparse=True): the JAX backend has no sparse outputs; leave it out."
        )
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"{layer} output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}.")
    return output_mode


def encode(indices: jax.Array, output_mode: str, depth: int, count_weights: Any = None) -> jax.Array:
    """Keras's ``encode_categorical_inputs``: indices as they are, or one/multi-hot or counts of ``depth``."""
    if output_mode == "int":
        return indices
    if indices.ndim == 0:
        indices = indices[None]
    if output_mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices[..., 0]
        return jax.nn.one_hot(indices, depth, dtype=jnp.float32)
    hot = jax.nn.one_hot(indices, depth, dtype=jnp.float32)
    if output_mode == "multi_hot":
        return jnp.max(hot, axis=-2)
    if count_weights is not None:
        hot = hot * jnp.asarray(count_weights, jnp.float32)[..., None]
    return jnp.sum(hot, axis=-2)


def encoded_shape(shape: tuple, output_mode: str, depth: int) -> tuple:
    """The shape :func:`encode` gives for inputs of ``shape`` (Keras's ``compute_output_shape``)."""
    if output_mode == "int":
        return shape
    if not shape:
        return (depth,)
    if output_mode == "one_hot" and (shape[-1] != 1 or len(shape) == 1):
        return (*shape, depth)
    return (*shape[:-1], depth)


def _check_integer_input(layer: Layer, spec: TensorSpec) -> None:
    if not jnp.issubdtype(spec.dtype, jnp.integer):
        raise layer.input_error(
            f"takes integer inputs, got {spec.dtype.name} (shape {spec.shape}). Strings cannot enter a "
            "compiled program: map them to integer ids on the host first (see StringLookup's message)"
        )


class CategoryEncoding(Layer):
    """Integer category ids in ``[0, num_tokens)`` as one-hot, multi-hot or count vectors (float32)."""

    def __init__(
        self,
        num_tokens: int | None = None,
        output_mode: str = "multi_hot",
        sparse: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if num_tokens is None or int(num_tokens) < 1:
            raise ValueError(f"CategoryEncoding needs num_tokens >= 1, got {num_tokens!r}.")
        self.num_tokens = int(num_tokens)
        self.output_mode = check_output_mode("CategoryEncoding", output_mode, sparse)
        if self.output_mode == "int":
            raise ValueError(
                "CategoryEncoding output_mode must be 'one_hot', 'multi_hot' or 'count', got 'int'."
            )

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """``encoded_shape`` of the input, float32."""
        return TensorSpec(encoded_shape(spec.shape, self.output_mode, self.num_tokens), "float32")

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The encoded ids (ids outside ``[0, num_tokens)`` encode to zeros)."""
        return encode(jnp.asarray(x).astype(jnp.int32), self.output_mode, self.num_tokens)

    def get_config(self) -> dict:
        """Keras's config: ``num_tokens`` and ``output_mode``."""
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode}


def hash_integers(x: jax.Array, salt: tuple[int, int] | None) -> jax.Array:
    """A well-mixed uint32 hash of integer ids: MurmurHash3's 32-bit finaliser of ``x ^ salt``.

    Deterministic across runs and backends, cheap inside the program; not
    Keras's FarmHash64/SipHash of the decimal string (which needs TensorFlow).
    """
    h = x.astype(jnp.uint32)
    if salt is not None:
        h = (h ^ jnp.uint32(salt[0] & 0xFFFFFFFF)) * jnp.uint32(0x9E3779B1) + jnp.uint32(salt[1] & 0xFFFFFFFF)
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


class Hashing(Layer):
    """Integer ids hashed into ``num_bins`` bins (bin 0 kept for ``mask_value`` when one is given)."""

    def __init__(
        self,
        num_bins: int,
        mask_value: int | None = None,
        salt: int | tuple | None = None,
        output_mode: str = "int",
        sparse: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if num_bins is None or int(num_bins) < 1 or (mask_value is not None and int(num_bins) < 2):
            raise ValueError(f"Hashing needs num_bins >= 1 (>= 2 with a mask_value), got {num_bins!r}.")
        self.num_bins, self.mask_value = int(num_bins), mask_value
        if (
            salt is not None
            and not isinstance(salt, int)
            and not (isinstance(salt, (tuple, list)) and len(salt) == 2)
        ):
            raise ValueError(f"Hashing salt must be an integer or a pair of integers, got {salt!r}.")
        self.salt = (
            None
            if salt is None
            else [int(salt), int(salt)]
            if isinstance(salt, int)
            else [int(s) for s in salt]
        )
        self.output_mode = check_output_mode("Hashing", output_mode, sparse)

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """Bins as int32 (``output_mode="int"``), else float32 encodings of ``num_bins``."""
        _check_integer_input(self, spec)
        shape = encoded_shape(spec.shape, self.output_mode, self.num_bins)
        return TensorSpec(shape, "int32" if self.output_mode == "int" else "float32")

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """``hash % bins`` (+1, with ``mask_value`` going to 0, when masking), then encoded."""
        bins = self.num_bins - 1 if self.mask_value is not None else self.num_bins
        values = (hash_integers(x, self.salt) % jnp.uint32(bins)).astype(jnp.int32)
        if self.mask_value is not None:
            values = jnp.where(x == self.mask_value, 0, values + 1)
        return encode(values, self.output_mode, self.num_bins)

    def get_config(self) -> dict:
        """Keras's config."""
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "mask_value": self.mask_value,
            "salt": self.salt,
            "output_mode": self.output_mode,
            "sparse": False,
        }


class IntegerLookup(Layer):
    """Integer tokens to contiguous indices through a vocabulary (given, or learned by :meth:`adapt`).

    Indices as Keras: ``mask_token`` (if set) -> 0, out-of-vocabulary tokens ->
    the next ``num_oov_indices`` (``token mod num_oov_indices``), then the
    vocabulary in order. ``invert=True`` maps indices back to tokens.
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: int | None = None,
        oov_token: int = -1,
        vocabulary: Any = None,
        vocabulary_dtype: str = "int64",
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        sparse: bool = False,
        pad_to_max_tokens: bool = False,
        oov_method: str = "floormod",
        salt: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"IntegerLookup max_tokens must be > 1, got {max_tokens!r}.")
        if num_oov_indices < 1:
            raise NotImplementedError(
                f"IntegerLookup(num_oov_indices={num_oov_indices}): Keras raises on unknown tokens at run "
                "time, which a compiled program cannot; use num_oov_indices >= 1."
            )
        if idf_weights is not None or output_mode == "tf_idf":
            raise NotImplementedError("IntegerLookup output_mode='tf_idf' is not supported by dagjax yet.")
        if oov_method != "floormod":
            raise NotImplementedError(
                f"IntegerLookup(oov_method={oov_method!r}): dagjax has 'floormod' only."
            )
        if isinstance(vocabulary, str):
            raise NotImplementedError(
                "IntegerLookup(vocabulary=<file path>): pass the vocabulary as a list (read the file first)."
            )
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, int(oov_token)
        self.vocabulary_dtype, self.invert = (
            vocabulary_dtype,
            bool(invert),
        )  # salt: only farmhash's OOV uses it
        self.output_mode = check_output_mode("IntegerLookup", output_mode, sparse)
        if invert and self.output_mode != "int":
            raise ValueError("IntegerLookup(invert=True) needs output_mode='int'.")
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.vocabulary: list[int] | None = None
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    def _start(self) -> int:
        """The first vocabulary index: after the mask index (if any) and the OOV indices."""
        return self.num_oov_indices + (self.mask_token is not None)

    def set_vocabulary(self, vocabulary: Any) -> None:
        """Use ``vocabulary`` (distinct integers, without the mask or OOV token) from now on."""
        tokens = [int(t) for t in np.asarray(vocabulary).reshape(-1)]
        head = self.get_vocabulary()[: self._start()]
        if tokens[: len(head)] == head:  # a get_vocabulary() list, reserved entries first: Keras takes it
            tokens = tokens[len(head) :]
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"IntegerLookup vocabulary has repeated tokens: {sorted(tokens)}.")
        reserved = [t for t in tokens if t in (self.mask_token, self.oov_token)]
        if reserved:
            raise ValueError(
                f"IntegerLookup vocabulary holds the mask or OOV token {reserved}; "
                "they get their own indices."
            )
        if self.max_tokens is not None and self._start() + len(tokens) > self.max_tokens:
            raise ValueError(
                f"IntegerLookup vocabulary of {len(tokens)} tokens plus {self._start()} reserved indices "
                f"exceeds max_tokens={self.max_tokens}."
            )
        self.vocabulary = tokens

    def get_vocabulary(self) -> list[int]:
        """Every index's token, as Keras: the mask token, the OOV token per OOV index, then the vocabulary."""
        head = ([self.mask_token] if self.mask_token is not None else []) + [
            self.oov_token
        ] * self.num_oov_indices
        return head + list(self.vocabulary or [])

    def vocabulary_size(self) -> int:
        """The number of indices (reserved ones included)."""
        return self._start() + len(self.vocabulary or [])

    def adapt(self, data: Any, steps: int | None = None) -> None:
        """Learn the vocabulary from ``data``: tokens by falling count (ties: larger first, as Keras)."""
        counts: Counter = Counter()
        for i, batch in enumerate(adapt_batches(data, "IntegerLookup")):
            if steps is not None and i >= steps:
                break
            counts.update(int(t) for t in batch.reshape(-1))
        for reserved in (self.mask_token, self.oov_token):
            counts.pop(reserved, None)
        tokens = np.asarray(list(counts), np.int64)
        frequency = np.asarray([counts[t] for t in tokens], np.int64)
        order = np.lexsort((tokens, frequency))[::-1]
        if self.max_tokens is not None:
            order = order[: self.max_tokens - self._start()]
        self.set_vocabulary(tokens[order])

    def _depth(self) -> int:
        if self.pad_to_max_tokens and self.max_tokens is not None:
            return self.max_tokens
        return self.vocabulary_size()

    def compute_output_spec(self, spec: TensorSpec) -> TensorSpec:
        """Indices (or tokens, inverted) as int32, else float32 encodings of the vocabulary size."""
        _check_integer_input(self, spec)
        if self.vocabulary is None:
            raise self.input_error(
                "has no vocabulary: pass vocabulary=[...] or call adapt(data) before using it"
            )
        shape = encoded_shape(spec.shape, self.output_mode, self._depth())
        return TensorSpec(shape, "int32" if self.output_mode == "int" else "float32")

    def call(self, params: dict, x: jax.Array) -> jax.Array:
        """The lookup (or its inverse), then the encoding."""
        x = jnp.asarray(x).astype(jnp.int32)
        if self.invert:
            table = jnp.asarray(self.get_vocabulary(), jnp.int32)
            inside = (x >= 0) & (x < table.shape[0])
            return jnp.where(inside, table[jnp.clip(x, 0, table.shape[0] - 1)], self.oov_token)
        offset = int(self.mask_token is not None)
        indices = offset + jnp.mod(x, self.num_oov_indices)
        if self.vocabulary:
            vocab = np.asarray(self.vocabulary, np.int64)
            order = np.argsort(vocab)
            sorted_vocab = jnp.asarray(vocab[order], jnp.int32)
            position = jnp.clip(jnp.searchsorted(sorted_vocab, x), 0, len(vocab) - 1)
            found = sorted_vocab[position] == x
            indices = jnp.where(found, jnp.asarray(order, jnp.int32)[position] + self._start(), indices)
        if self.mask_token is not None:
            indices = jnp.where(x == self.mask_token, 0, indices)
        return encode(indices.astype(jnp.int32), self.output_mode, self._depth())

    def get_config(self) -> dict:
        """Keras's config, with the (given or adapted) vocabulary."""
        return {
            **super().get_config(),
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "mask_token": self.mask_token,
            "oov_token": self.oov_token,
            "vocabulary": self.vocabulary,
            "vocabulary_dtype": self.vocabulary_dtype,
            "invert": self.invert,
            "output_mode": self.output_mode,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "oov_method": "floormod",
        }
