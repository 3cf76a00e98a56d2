"""Hyperparameter search with keras-tuner's names, run on Optuna (``pip install 'dagjax[tuning]'``)."""

from dagjax.tuners._hypermodel import HyperModel as HyperModel
from dagjax.tuners._hyperparameters import HyperParameters as HyperParameters
from dagjax.tuners._objective import Objective as Objective
