"""Learning-rate schedules with Keras's names (``keras.optimizers.schedules``).

>>> from dagjax.optimizers import SGD, schedules
>>> opt = SGD(learning_rate=schedules.CosineDecay(0.1, decay_steps=1000))
"""

from dagjax.training.optimizers._schedules import CosineDecay as CosineDecay
from dagjax.training.optimizers._schedules import CosineDecayRestarts as CosineDecayRestarts
from dagjax.training.optimizers._schedules import ExponentialDecay as ExponentialDecay
from dagjax.training.optimizers._schedules import InverseTimeDecay as InverseTimeDecay
from dagjax.training.optimizers._schedules import LearningRateSchedule as LearningRateSchedule
from dagjax.training.optimizers._schedules import PiecewiseConstantDecay as PiecewiseConstantDecay
from dagjax.training.optimizers._schedules import PolynomialDecay as PolynomialDecay
from dagjax.training.optimizers._schedules import deserialize as deserialize
from dagjax.training.optimizers._schedules import serialize as serialize
