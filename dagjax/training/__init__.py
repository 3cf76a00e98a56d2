"""Training: losses, metrics, optimizers, the pure train step and the Keras-style fit loop."""

from dagjax.training.core._trainer import Trainer as Trainer
from dagjax.training.core._trainer import TrainState as TrainState
from dagjax.training.core._trainer import build_trainer as build_trainer
from dagjax.training.fit._cache import enable_compilation_cache as enable_compilation_cache
