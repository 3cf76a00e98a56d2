"""Xception (Chollet, 2017) as ``keras.applications.xception``: same layers, names, weight order."""

from __future__ import annotations

from typing import Any

from dagjax import layers
from dagjax.applications._common import image_input, load_given_weights
from dagjax.applications._common import preprocess_tf as preprocess_input  # noqa: F401 - public name
from dagjax.model import Model

_ENTRY_FILTERS = ((2, 128), (3, 256), (4, 728))  # (block, separable filters) of the entry flow's blocks 2-4


def _conv_bn(x: Any, filters: int, name: str, strides: int = 1) -> Any:
    """An unbiased 3x3 convolution and its BatchNormalization, named as Keras names them."""
    x = layers.Conv2D(filters, (3, 3), strides=(strides, strides), use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def _sep_bn(x: Any, filters: int, name: str) -> Any:
    """An unbiased "same" 3x3 separable convolution and its BatchNormalization."""
    x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def _shortcut(x: Any, filters: int) -> Any:
    """The strided 1x1 projection a downsampling block adds back (unnamed in Keras too)."""
    x = layers.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    return layers.BatchNormalization()(x)


def _downsampling_block(x: Any, block: int, filters: tuple[int, int], relu_first: bool) -> Any:
    """Two separable convolutions, a strided max pool, and the projected shortcut added."""
    residual = _shortcut(x, filters[1])
    if relu_first:
        x = layers.Activation("relu", name=f"block{block}_sepconv1_act")(x)
    x = _sep_bn(x, filters[0], f"block{block}_sepconv1")
    x = layers.Activation("relu", name=f"block{block}_sepconv2_act")(x)
    x = _sep_bn(x, filters[1], f"block{block}_sepconv2")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(x)
    return layers.add([x, residual])


def Xception(
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "xception",
) -> Model:
    """The Xception model with Keras's arguments; ``weights=None`` for fresh ones (nothing is downloaded).

    Inputs of at least 71x71 (299x299 by default with the classifier on top), as Keras requires.
    """
    inputs = image_input(input_shape, input_tensor, 299, include_top, "Xception", min_size=71)
    x = layers.Activation("relu", name="block1_conv1_act")(_conv_bn(inputs, 32, "block1_conv1", strides=2))
    x = layers.Activation("relu", name="block1_conv2_act")(_conv_bn(x, 64, "block1_conv2"))
    for block, filters in _ENTRY_FILTERS:
        x = _downsampling_block(x, block, (filters, filters), relu_first=block > 2)
    for block in range(5, 13):  # the middle flow: eight residual blocks of three separable convolutions
        residual = x
        for conv in (1, 2, 3):
            x = layers.Activation("relu", name=f"block{block}_sepconv{conv}_act")(x)
            x = _sep_bn(x, 728, f"block{block}_sepconv{conv}")
        x = layers.add([x, residual])
    x = _downsampling_block(x, 13, (728, 1024), relu_first=True)
    for conv, filters in ((1, 1536), (2, 2048)):
        x = _sep_bn(x, filters, f"block14_sepconv{conv}")
        x = layers.Activation("relu", name=f"block14_sepconv{conv}_act")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)
    return load_given_weights(Model(inputs, x, name=name), weights, "Xception")
