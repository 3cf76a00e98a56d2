"""Training: losses, metrics, optimizers, the pure train step and the Keras-style fit loop."""

from dagjax.training._cache import enable_compilation_cache as enable_compilation_cache
from dagjax.training._step import Trainer as Trainer
from dagjax.training._step import TrainState as TrainState
from dagjax.training._step import build_trainer as build_trainer
