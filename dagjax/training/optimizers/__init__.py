"""Keras's optimizers as optax transformations, and the learning rate kept in their state."""

from dagjax.training.optimizers._keras import KerasOptimizer as KerasOptimizer
from dagjax.training.optimizers._keras import get as get
from dagjax.training.optimizers._learning_rate import ModelOptimizer as ModelOptimizer
from dagjax.training.optimizers._learning_rate import bind as bind
from dagjax.training.optimizers._learning_rate import get_learning_rate as get_learning_rate
from dagjax.training.optimizers._learning_rate import injected_names as injected_names
from dagjax.training.optimizers._learning_rate import set_hyperparams as set_hyperparams
from dagjax.training.optimizers._learning_rate import set_learning_rate as set_learning_rate
