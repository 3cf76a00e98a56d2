"""VGG19 (Simonyan & Zisserman, 2014) as ``keras.applications.vgg19``: same layers, names, weight order."""

from __future__ import annotations

from typing import Any

from dagjax import layers
from dagjax.applications._common import image_input, load_given_weights
from dagjax.applications._common import preprocess_caffe as preprocess_input  # noqa: F401 - public name
from dagjax.model import Model

_BLOCKS = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # (filters, 3x3 convolutions) per block


def VGG19(
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    input_shape: tuple | None = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str = "vgg19",
) -> Model:
    """The VGG19 model with Keras's arguments; ``weights=None`` for fresh weights (nothing is downloaded)."""
    inputs = image_input(input_shape, input_tensor, 224, include_top, "VGG19")
    x = inputs
    for block, (filters, convs) in enumerate(_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same",
                              name=f"block{block}_conv{conv}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)
    return load_given_weights(Model(inputs, x, name=name), weights, "VGG19")
