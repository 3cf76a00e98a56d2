"""Models, and model files: Keras's ``keras.models`` names.

>>> from dagjax import models
>>> model = models.load_model("model.dj")
"""

from dagjax.io import load_model as load_model
from dagjax.io import save_model as save_model
from dagjax.model import Model as Model
from dagjax.model import Sequential as Sequential
from dagjax.model import clone_model as clone_model
from dagjax.model import model_from_json as model_from_json

Functional = Model  # Keras's class of graph models: every dagjax Model is one
