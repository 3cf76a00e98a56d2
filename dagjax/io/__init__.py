"""Model files and weight checkpoints: atomic, checked, and free of pickled code.

Usage::

    model.save("model.dj")            # architecture, params, state (and trained optimizer state)
    model = dj.load_model("model.dj")
    model.save_weights("weights.dj")
    model.load_weights("weights.dj")

    model.save("model.keras", format="keras")   # a Keras 3 file (needs h5py: pip install dagjax[keras-files])
    model = dj.load_model("model.keras")        # a Keras 3 file, told by its content
"""

from dagjax.io._arrays import CheckpointError as CheckpointError
from dagjax.io._arrays import write_archive as write_archive
from dagjax.io._atomic import atomic_write as atomic_write
from dagjax.io._atomic import writes_files as writes_files
from dagjax.io._keras_files import load_keras_model as load_keras_model
from dagjax.io._keras_files import save_keras_model as save_keras_model
from dagjax.io._reading import checked_zip as checked_zip
from dagjax.io._reading import read_archive as read_archive
from dagjax.io._reading import read_member as read_member
from dagjax.io._saving import load_model as load_model
from dagjax.io._saving import load_weights as load_weights
from dagjax.io._saving import save_model as save_model
from dagjax.io._saving import save_weights as save_weights
from dagjax.layers._registry import custom_object_scope as custom_object_scope
from dagjax.layers._registry import register_layer as register_layer
from dagjax.layers._serialization import layer_from_config as layer_from_config
from dagjax.layers._serialization import layer_to_config as layer_to_config
