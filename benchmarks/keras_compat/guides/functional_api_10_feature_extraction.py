"""The Functional API: Extract and reuse nodes in the graph of layers (VGG19's activations).

Changed from the guide: ``keras.applications.VGG19(weights=None)`` (no weight download).
"""

import numpy as np
import keras

vgg19 = keras.applications.VGG19(weights=None)
features_list = [layer.output for layer in vgg19.layers]
feat_extraction_model = keras.Model(inputs=vgg19.input, outputs=features_list)

img = np.random.random((1, 224, 224, 3)).astype("float32")
extracted_features = feat_extraction_model(img)
