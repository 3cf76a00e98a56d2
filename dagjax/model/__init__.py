"""The model: a graph of layers as pure ``init`` / ``apply`` functions, its weights, and its config."""

from dagjax.layers._registry import register_builtin
from dagjax.model._clone import clone_model as clone_model
from dagjax.model._config import model_from_json as model_from_json
from dagjax.model._functional import Model as Model
from dagjax.model._sequential import Sequential as Sequential

# Model files name these classes; the layer registry (below this package) learns them from here.
register_builtin(Model, "Functional", "Model")
register_builtin(Sequential, "Sequential")
