"""Utilities: Keras's ``keras.utils`` names (data helpers, seeding) and model summaries and graph plots."""

from dagjax.utils._categorical import to_categorical as to_categorical
from dagjax.utils._packing import pack_x_y_sample_weight as pack_x_y_sample_weight
from dagjax.utils._packing import unpack_x_y_sample_weight as unpack_x_y_sample_weight
from dagjax.utils._plot import model_to_dot as model_to_dot
from dagjax.utils._plot import plot_model as plot_model
from dagjax.utils._py_dataset import PyDataset as PyDataset
from dagjax.utils._random import set_random_seed as set_random_seed
from dagjax.utils._summary import summary as summary
