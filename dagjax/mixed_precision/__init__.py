"""Mixed precision, as ``keras.mixed_precision``: compute in float16 or bfloat16, keep weights in float32.

>>> from dagjax import mixed_precision
>>> mixed_precision.set_global_policy("mixed_bfloat16")   # layers made from now on
>>> x = dj.Input((784,))
>>> h = layers.Dense(512, activation="relu")(x)          # bfloat16 compute, float32 kernel
>>> y = layers.Dense(10, activation="softmax", dtype="float32")(h)   # the last layer in float32
>>> mixed_precision.set_global_policy("float32")

Each layer keeps the policy it was made with (``layer.dtype_policy``,
``layer.compute_dtype``, ``layer.variable_dtype``); a model casts each layer's
floating inputs and weights to its compute dtype as it runs it, so params and
optimizer state stay float32 and gradients come back float32. Losses and
metrics are computed in float32; BatchNormalization and LayerNormalization
normalize in float32. Under ``mixed_float16`` ``compile`` wraps the optimizer
in a :class:`LossScaleOptimizer` (dynamic loss scaling, non-finite steps
skipped) unless told ``auto_scale_loss=False``.
"""

from dagjax.layers._autocast import autocast as autocast
from dagjax.layers._dtype_policy import DTypePolicy as DTypePolicy
from dagjax.layers._dtype_policy import global_policy as global_policy
from dagjax.layers._dtype_policy import set_global_policy as set_global_policy
from dagjax.training.optimizers import LossScaleOptimizer as LossScaleOptimizer
from dagjax.training.optimizers import loss_scale as loss_scale

Policy = DTypePolicy  # Keras's legacy name
dtype_policy = global_policy  # Keras's other name for it
set_dtype_policy = set_global_policy  # likewise

