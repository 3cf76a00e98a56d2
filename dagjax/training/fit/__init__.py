"""The Keras-style fit session: compiled loops over the data, callbacks, and the hand-off of weights."""

from dagjax.training.fit._distributed import current_distribution as current_distribution
from dagjax.training.fit._distributed import place_loaded as place_loaded
from dagjax.training.fit._distributed import train_state_shardings as train_state_shardings
from dagjax.training.fit._distributed import use_distribution as use_distribution
from dagjax.training.fit._loop import log_value as log_value
from dagjax.training.fit._perf import Switches as Switches
from dagjax.training.fit._perf import enable_compilation_cache as enable_compilation_cache
from dagjax.training.fit._perf import switches as switches
from dagjax.training.fit._placement import place as place
from dagjax.training.fit._placement import state_shardings as state_shardings
from dagjax.training.fit._placement import weight_shardings as weight_shardings
from dagjax.training.fit._predict import predict as predict
from dagjax.training.fit._predict import predict_on_batch as predict_on_batch
from dagjax.training.fit._session import FitSession as FitSession
