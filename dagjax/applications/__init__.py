"""Keras's ``keras.applications`` image models, built from dagjax layers (no weights are downloaded).

>>> from dagjax import applications
>>> vgg19 = applications.VGG19(weights=None)
>>> features = dj.Model(vgg19.input, [layer.output for layer in vgg19.layers])

Same layer names, shapes and weight order as Keras's, so
``model.set_weights(keras.applications.VGG19().get_weights())`` gives Keras's pretrained model.
"""

from dagjax.applications import mobilenet as mobilenet
from dagjax.applications import vgg19 as vgg19
from dagjax.applications import xception as xception
from dagjax.applications.mobilenet import MobileNet as MobileNet
from dagjax.applications.vgg19 import VGG19 as VGG19
from dagjax.applications.xception import Xception as Xception
