"""The model: a graph of layers as pure ``init`` / ``apply`` functions, its weights, and its config."""

from dagjax.model._functional import Model as Model
from dagjax.model._sequential import Sequential as Sequential
