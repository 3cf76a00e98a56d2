"""DLwP 1st ed., ch. 7.1.6: a whole model (Xception's convolutional base) used as a layer by two branches.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports;
71x71 inputs (Xception's smallest) in place of 250x250, and no pretrained weights (no download).
"""

import numpy as np
from keras import Input, applications, layers

xception_base = applications.Xception(weights=None, include_top=False)

left_input = Input(shape=(71, 71, 3))
right_input = Input(shape=(71, 71, 3))

left_features = xception_base(left_input)
right_features = xception_base(right_input)

merged_features = layers.concatenate([left_features, right_features], axis=-1)
assert tuple(merged_features.shape) == (None, 3, 3, 4096)
