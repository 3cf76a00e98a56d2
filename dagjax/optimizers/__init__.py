"""Optimizers: Keras names and update maths, as optax ``GradientTransformation``s.

Any optax transformation works where an optimizer is expected; the Keras-style
constructors keep the learning rate in the optimizer state, readable and
settable between steps without recompiling, or follow one of Keras's
``schedules`` (``optimizers.schedules.ExponentialDecay(...)``), and keep more
of their numeric arguments there on request (``Adam().injecting("beta_1")``,
then ``set_hyperparams(state, {"beta_1": 0.8})``).

>>> from dagjax import optimizers
>>> opt = optimizers.get("adam")
>>> state = opt.init({"w": jnp.zeros(2)})
>>> optimizers.get_learning_rate(state)
Array(0.001, dtype=float32)
"""

from dagjax.optimizers import schedules as schedules
from dagjax.training.optimizers import KerasOptimizer as KerasOptimizer
from dagjax.training.optimizers import LossScaleOptimizer as LossScaleOptimizer
from dagjax.training.optimizers import get as get
from dagjax.training.optimizers import get_learning_rate as get_learning_rate
from dagjax.training.optimizers import injected_names as injected_names
from dagjax.training.optimizers import set_hyperparams as set_hyperparams
from dagjax.training.optimizers import set_learning_rate as set_learning_rate
from dagjax.training.optimizers._keras import SGD as SGD
from dagjax.training.optimizers._keras import Adadelta as Adadelta
from dagjax.training.optimizers._keras import Adagrad as Adagrad
from dagjax.training.optimizers._keras import Adam as Adam
from dagjax.training.optimizers._keras import Adamax as Adamax
from dagjax.training.optimizers._keras import AdamW as AdamW
from dagjax.training.optimizers._keras import KerasOptimizerState as KerasOptimizerState
from dagjax.training.optimizers._keras import Lion as Lion
from dagjax.training.optimizers._keras import Nadam as Nadam
from dagjax.training.optimizers._keras import RMSprop as RMSprop
