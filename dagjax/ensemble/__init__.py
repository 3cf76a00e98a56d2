"""Ensembles of models with the same inputs and outputs: ``average`` them, ``fit_weights`` for the mix.

>>> weights = dj.ensemble.fit_weights([a, b, c], x_val, y_val, "sparse_categorical_crossentropy")
>>> ensemble = dj.ensemble.average([a, b, c], weights)
>>> ensemble.save("ensemble.dj"); dj.load_model("ensemble.dj")

``DeepEnsemble(model, n_members)`` trains K seeds of one architecture as one program:

>>> deep = dj.ensemble.DeepEnsemble(model, n_members=5)
>>> deep.compile("adam", "mse"); deep.fit(x, y, epochs=10)
>>> mean, std = deep.predict(x_test, return_std=True)
"""

from dagjax.ensemble._average import average as average
from dagjax.ensemble._deep import DeepEnsemble as DeepEnsemble
from dagjax.ensemble._deep import EnsembleHistory as EnsembleHistory
from dagjax.ensemble._fit_weights import fit_weights as fit_weights
from dagjax.ensemble._layer import WeightedAverage as WeightedAverage
from dagjax.layers._registry import register_builtin

# Model files name this class; the layer registry (below this package) learns it from here.
register_builtin(WeightedAverage, "WeightedAverage")
