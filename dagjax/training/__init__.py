"""Training: the pure train step (``core``) and the Keras-style fit session (``fit``) built on it."""

from dagjax.training.core import Trainer as Trainer
from dagjax.training.core import TrainState as TrainState
from dagjax.training.core import build_trainer as build_trainer
from dagjax.training.core import gather as gather
from dagjax.training.core import step_rng as step_rng
from dagjax.training.fit import FitSession as FitSession
from dagjax.training.fit import enable_compilation_cache as enable_compilation_cache
