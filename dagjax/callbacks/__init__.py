"""Callbacks with Keras 3's names and hooks, passed to ``fit`` / ``evaluate`` / ``predict``."""

from dagjax.callbacks._backup import BackupAndRestore as BackupAndRestore
from dagjax.callbacks._base import Callback as Callback
from dagjax.callbacks._base import CallbackList as CallbackList
from dagjax.callbacks._base import History as History
from dagjax.callbacks._base import ProgbarLogger as ProgbarLogger
from dagjax.callbacks._base import callback_list as callback_list
from dagjax.callbacks._checkpoint import ModelCheckpoint as ModelCheckpoint
from dagjax.callbacks._early_stopping import EarlyStopping as EarlyStopping
from dagjax.callbacks._learning_rate import LearningRateScheduler as LearningRateScheduler
from dagjax.callbacks._learning_rate import ReduceLROnPlateau as ReduceLROnPlateau
from dagjax.callbacks._logging import CSVLogger as CSVLogger
from dagjax.callbacks._logging import LambdaCallback as LambdaCallback
from dagjax.callbacks._logging import TerminateOnNaN as TerminateOnNaN
from dagjax.callbacks._monitor import MonitorCallback as MonitorCallback
from dagjax.callbacks._tensorboard import TensorBoard as TensorBoard
