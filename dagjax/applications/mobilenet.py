"""MobileNet (Howard et al., 2017) as ``keras.applications.mobilenet``: same layers, names, weight order."""

from __future__ import annotations

from typing import Any

from dagjax import layers
from dagjax.applications._common import image_input, load_given_weights
from dagjax.applications._common import preprocess_tf as preprocess_input  # noqa: F401 - public name
from dagjax.model import Model

# (pointwise filters, stride) of depthwise-separable blocks 1 to 13.
_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _separable_block(x: Any, filters: int, stride: int, depth_multiplier: int, block: int) -> Any:
    """Depthwise 3x3 (padded as Keras pads a strided one), BN, ReLU6, pointwise 1x1, BN, ReLU6."""
    if stride != 1:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block}")(x)
    x = layers.DepthwiseConv2D((3, 3), padding="same" if stride == 1 else "valid",
                               depth_multiplier=depth_multiplier, strides=(stride, stride),
                               use_bias=False, name=f"conv_dw_{block}")(x)
    x = layers.BatchNormalization(name=f"conv_dw_{block}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block}_relu")(x)
    x = layers.Conv2D(filters, (1, 1), padding="same", use_bias=False, name=f"conv_pw_{block}")(x)
    x = layers.BatchNormalization(name=f"conv_pw_{block}_bn")(x)
    return layers.ReLU(6.0, name=f"conv_pw_{block}_relu")(x)


def MobileNet(
    input_shape: tuple | None = None,
    alpha: float = 1.0,
    depth_multiplier: int = 1,
    dropout: float = 1e-3,
    include_top: bool = True,
    weights: Any = "imagenet",
    input_tensor: Any = None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation: Any = "softmax",
    name: str | None = None,
) -> Model:
    """The MobileNet model with Keras's arguments; ``weights=None`` for fresh ones (nothing is downloaded)."""
    inputs = image_input(input_shape, input_tensor, 224, include_top, "MobileNet")
    x = layers.Conv2D(int(32 * alpha), (3, 3), padding="same", use_bias=False, strides=(2, 2),
                      name="conv1")(inputs)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block, (filters, stride) in enumerate(_BLOCKS, start=1):
        x = _separable_block(x, int(filters * alpha), stride, depth_multiplier, block)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, (1, 1), padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)
    rows = inputs.shape[1]
    model = Model(inputs, x, name=name if name is not None else f"mobilenet_{alpha:0.2f}_{rows}")
    return load_given_weights(model, weights, "MobileNet")
