"""``keras.distribution``'s names on ``jax.sharding``: meshes, layouts, data and model parallelism.

Under ``set_distribution(d)`` (or ``with d.scope():``) ``fit``, ``evaluate`` and
``predict`` place the weights by ``d``'s layouts and split each batch along its
batch axis; ``set_distribution(None)`` goes back to one device::

    mesh = DeviceMesh((2, 2), ("batch", "model"))
    layout_map = LayoutMap(mesh)
    layout_map["dense.*kernel"] = (None, "model")
    with ModelParallel(layout_map=layout_map).scope():
        model.fit(x, y, batch_size=64)
"""

from dagjax.distribution._distribution import DataParallel as DataParallel
from dagjax.distribution._distribution import Distribution as Distribution
from dagjax.distribution._distribution import ModelParallel as ModelParallel
from dagjax.distribution._distribution import distribution as distribution
from dagjax.distribution._distribution import initialize as initialize
from dagjax.distribution._distribution import set_distribution as set_distribution
from dagjax.distribution._mesh import DeviceMesh as DeviceMesh
from dagjax.distribution._mesh import LayoutMap as LayoutMap
from dagjax.distribution._mesh import TensorLayout as TensorLayout
from dagjax.distribution._mesh import list_devices as list_devices
from dagjax.io import writes_files as writes_files
from dagjax.training.fit import place as place
from dagjax.training.fit import state_shardings as state_shardings
from dagjax.training.fit import train_state_shardings as train_state_shardings
from dagjax.training.fit import weight_shardings as weight_shardings
