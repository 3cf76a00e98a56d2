"""Hyperparameter search with keras-tuner's names, run on Optuna (``pip install 'dagjax[tuning]'``).

>>> from dagjax import tuners
>>> def build(hp):
...     ...  # a compiled dagjax Model whose settings come from hp.Int / hp.Float / hp.Choice
>>> tuner = tuners.RandomSearch(build, objective="val_accuracy", max_trials=20, seed=0,
...                             directory="tuning", project_name="digits")  # doctest: +SKIP
>>> tuner.search(x, y, epochs=10, validation_split=0.2)                      # doctest: +SKIP
>>> best_model = tuner.get_best_models(1)[0]                                  # doctest: +SKIP

The search lives in a database (an SQLite file in ``directory/project_name``
unless ``storage=`` names another): run the script again to resume it, or
in several processes at once to share it. ``tuner.study`` is the Optuna study.
``population=8`` (any tuner) trains up to 8 trials at a time, each group of
one architecture as one compiled program (``_batches.py``).
"""

from dagjax.tuners._hypermodel import HyperModel as HyperModel
from dagjax.tuners._hyperparameters import HyperParameters as HyperParameters
from dagjax.tuners._objective import Objective as Objective
from dagjax.tuners._tuner import Tuner as Tuner
from dagjax.tuners._tuners import BayesianOptimization as BayesianOptimization
from dagjax.tuners._tuners import GridSearch as GridSearch
from dagjax.tuners._tuners import Hyperband as Hyperband
from dagjax.tuners._tuners import RandomSearch as RandomSearch
