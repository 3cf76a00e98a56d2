"""Ensembles of models with the same inputs and outputs: ``average`` them into one Model.

>>> ensemble = dj.ensemble.average([a, b, c], weights=[2, 1, 1])
>>> ensemble.save("ensemble.dj"); dj.load_model("ensemble.dj")
"""

from dagjax.ensemble._average import average as average
from dagjax.ensemble._layer import WeightedAverage as WeightedAverage
from dagjax.layers._registry import register_builtin

# Model files name this class; the layer registry (below this package) learns it from here.
register_builtin(WeightedAverage, "WeightedAverage")
