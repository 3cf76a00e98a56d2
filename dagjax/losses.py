"""Losses by Keras name: classes reduce to a scalar, lowercase functions give per-sample values.

>>> from dagjax import losses
>>> losses.get("mse")
MeanSquaredError(name='mse')
"""

from dagjax.training.objectives._loss_functions import bce as bce
from dagjax.training.objectives._loss_functions import binary_crossentropy as binary_crossentropy
from dagjax.training.objectives._loss_functions import categorical_crossentropy as categorical_crossentropy
from dagjax.training.objectives._loss_functions import categorical_hinge as categorical_hinge
from dagjax.training.objectives._loss_functions import cosine_similarity as cosine_similarity
from dagjax.training.objectives._loss_functions import hinge as hinge
from dagjax.training.objectives._loss_functions import huber as huber
from dagjax.training.objectives._loss_functions import kl_divergence as kl_divergence
from dagjax.training.objectives._loss_functions import kld as kld
from dagjax.training.objectives._loss_functions import log_cosh as log_cosh
from dagjax.training.objectives._loss_functions import mae as mae
from dagjax.training.objectives._loss_functions import mape as mape
from dagjax.training.objectives._loss_functions import mean_absolute_error as mean_absolute_error
from dagjax.training.objectives._loss_functions import (
    mean_absolute_percentage_error as mean_absolute_percentage_error,
)
from dagjax.training.objectives._loss_functions import mean_squared_error as mean_squared_error
from dagjax.training.objectives._loss_functions import (
    mean_squared_logarithmic_error as mean_squared_logarithmic_error,
)
from dagjax.training.objectives._loss_functions import mse as mse
from dagjax.training.objectives._loss_functions import msle as msle
from dagjax.training.objectives._loss_functions import poisson as poisson
from dagjax.training.objectives._loss_functions import (
    sparse_categorical_crossentropy as sparse_categorical_crossentropy,
)
from dagjax.training.objectives._loss_functions import squared_hinge as squared_hinge
from dagjax.training.objectives._losses import BinaryCrossentropy as BinaryCrossentropy
from dagjax.training.objectives._losses import CategoricalCrossentropy as CategoricalCrossentropy
from dagjax.training.objectives._losses import CategoricalHinge as CategoricalHinge
from dagjax.training.objectives._losses import CosineSimilarity as CosineSimilarity
from dagjax.training.objectives._losses import Hinge as Hinge
from dagjax.training.objectives._losses import Huber as Huber
from dagjax.training.objectives._losses import KLDivergence as KLDivergence
from dagjax.training.objectives._losses import LogCosh as LogCosh
from dagjax.training.objectives._losses import Loss as Loss
from dagjax.training.objectives._losses import LossFunctionWrapper as LossFunctionWrapper
from dagjax.training.objectives._losses import MeanAbsoluteError as MeanAbsoluteError
from dagjax.training.objectives._losses import MeanAbsolutePercentageError as MeanAbsolutePercentageError
from dagjax.training.objectives._losses import MeanSquaredError as MeanSquaredError
from dagjax.training.objectives._losses import MeanSquaredLogarithmicError as MeanSquaredLogarithmicError
from dagjax.training.objectives._losses import Poisson as Poisson
from dagjax.training.objectives._losses import SparseCategoricalCrossentropy as SparseCategoricalCrossentropy
from dagjax.training.objectives._losses import SquaredHinge as SquaredHinge
from dagjax.training.objectives._losses import get as get
