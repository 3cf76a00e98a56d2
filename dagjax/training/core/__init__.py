"""The pure training core: compile's arguments resolved once, the train state, and the step fit runs."""

from dagjax.training.core._compile_config import NotSerializableError as NotSerializableError
from dagjax.training.core._compile_config import compile_arguments as compile_arguments
from dagjax.training.core._compile_config import compile_config as compile_config
from dagjax.training.core._compile_metrics import CompileMetrics as CompileMetrics
from dagjax.training.core._custom_step import with_custom_step as with_custom_step
from dagjax.training.core._hyperparams import STEP_HYPERPARAMS as STEP_HYPERPARAMS
from dagjax.training.core._keras_loss import compute_loss as compute_loss
from dagjax.training.core._keras_loss import count_output_losses as count_output_losses
from dagjax.training.core._keras_predict import keras_predict_function as keras_predict_function
from dagjax.training.core._keras_step import hand_to_metrics as hand_to_metrics
from dagjax.training.core._keras_step import with_keras_steps as with_keras_steps
from dagjax.training.core._objective import Objective as Objective
from dagjax.training.core._objective import resolve_objective as resolve_objective
from dagjax.training.core._trainer import LossAux as LossAux
from dagjax.training.core._trainer import Trainer as Trainer
from dagjax.training.core._trainer import TrainState as TrainState
from dagjax.training.core._trainer import build_trainer as build_trainer
from dagjax.training.core._trainer import gather as gather
from dagjax.training.core._trainer import make_trainer as make_trainer
from dagjax.training.core._trainer import step_rng as step_rng
from dagjax.training.core._trainer import trainable_mask as trainable_mask
from dagjax.training.core._trainer import trainable_only as trainable_only
