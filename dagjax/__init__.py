"""dagjax: the Keras functional API as a pure-functional compiler on JAX."""

from dagjax import activations as activations
from dagjax import applications as applications
from dagjax import backend as backend
from dagjax import initializers as initializers
from dagjax import layers as layers
from dagjax import regularizers as regularizers
from dagjax._graph import SymbolicTensor as SymbolicTensor
from dagjax._naming import clear_session as clear_session
from dagjax.layers import Input as Input
from dagjax.layers import Variable as Variable
from dagjax.model import Model as Model
from dagjax.model import Sequential as Sequential

__version__ = "0.1.0"
from dagjax import callbacks as callbacks
from dagjax import config as config
from dagjax import distribution as distribution
from dagjax import ensemble as ensemble
from dagjax import export as export
from dagjax import losses as losses
from dagjax import metrics as metrics
from dagjax import mixed_precision as mixed_precision
from dagjax import models as models
from dagjax import ops as ops
from dagjax import optimizers as optimizers
from dagjax import random as random
from dagjax import saving as saving
from dagjax import utils as utils
from dagjax.io import load_model as load_model
from dagjax.io import register_layer as register_layer

KerasTensor = SymbolicTensor  # Keras's name for a symbolic tensor
