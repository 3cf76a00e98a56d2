"""Keras's optimizers as optax transformations, and the learning rate kept in their state."""

from dagjax.training.optimizers._keras import KerasOptimizer as KerasOptimizer
from dagjax.training.optimizers._keras import get as get
from dagjax.training.optimizers._learning_rate import ModelOptimizer as ModelOptimizer
from dagjax.training.optimizers._learning_rate import bind as bind
from dagjax.training.optimizers._learning_rate import get_learning_rate as get_learning_rate
from dagjax.training.optimizers._learning_rate import injected_names as injected_names
from dagjax.training.optimizers._learning_rate import set_hyperparams as set_hyperparams
from dagjax.training.optimizers._learning_rate import set_learning_rate as set_learning_rate
from dagjax.training.optimizers._loss_scale import LossScaleOptimizer as LossScaleOptimizer
from dagjax.training.optimizers._loss_scale import LossScaleState as LossScaleState
from dagjax.training.optimizers._loss_scale import loss_scale as loss_scale
from dagjax.training.optimizers._loss_scale import scaled_value_and_grad as scaled_value_and_grad
from dagjax.training.optimizers._loss_scale import with_loss_scaling as with_loss_scaling
