"""What every image model here shares: its Input, its weights argument, Keras's image preprocessing."""

from __future__ import annotations

from typing import Any

import numpy as np

from dagjax.layers import Input


def image_input(
    input_shape: tuple | None,
    input_tensor: Any,
    default_size: int,
    include_top: bool,
    name: str,
    min_size: int = 32,
) -> Any:
    """The model's image Input, as Keras's ``obtain_input_shape`` decides it (channels-last, 3 channels).

    With the classifier on top the size must be known (default ``default_size`` square); without it,
    ``(None, None, 3)``. A known side under ``min_size`` pixels is refused, as Keras refuses it.
    """
    if input_tensor is not None:
        return input_tensor
    if input_shape is None:
        input_shape = (default_size, default_size, 3) if include_top else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"{name}: input_shape must be (rows, cols, 3), channels last; got {input_shape}.")
    if include_top and None in input_shape:
        raise ValueError(f"{name}(include_top=True) needs a known input_shape, got {input_shape}.")
    if any(d is not None and d < min_size for d in input_shape[:2]):
        raise ValueError(f"{name}: input size must be at least {min_size}x{min_size}, got {input_shape}.")
    return Input(shape=input_shape)


def load_given_weights(model: Any, weights: Any, name: str) -> Any:
    """``weights=None``: fresh ones; a file path: loaded; ``"imagenet"``: refused (nothing is downloaded)."""
    if weights == "imagenet":
        raise ValueError(
            f"{name}(weights='imagenet'): dagjax does not download weights. Pass weights=None for fresh "
            f"ones, a file saved with model.save_weights(path), or copy Keras's: "
            f"model.set_weights(keras.applications.{name}().get_weights())."
        )
    if weights is not None:
        model.load_weights(weights)
    return model


def preprocess_caffe(x: Any) -> np.ndarray:
    """RGB in [0, 255] -> BGR less ImageNet's channel means (Keras's ``mode="caffe"``, VGG's)."""
    x = np.asarray(x, dtype="float32")[..., ::-1]
    return x - np.array([103.939, 116.779, 123.68], dtype="float32")


def preprocess_tf(x: Any) -> np.ndarray:
    """RGB in [0, 255] -> [-1, 1] (Keras's ``mode="tf"``, MobileNet's)."""
    return np.asarray(x, dtype="float32") / 127.5 - 1.0
