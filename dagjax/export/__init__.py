"""A model's inference function as a StableHLO program in one file, loaded without the model's code.

Usage::

    model.export("model.djx")                      # the inference function, weights baked in
    loaded = dagjax.export.load("model.djx")       # needs no layer class, no model code
    outputs = loaded(x)                            # == model.predict(x), for any batch size

    model.export("model.djx", platforms=("cpu", "cuda"), params_as_argument=True)
    outputs = dagjax.export.load("model.djx")(x, params=new_params, state=new_state)

The program is ``jax.export``'s serialization (which needs the ``flatbuffers``
package); the file holds it with a JSON signature (names, shapes, dtypes, the
output structure and a format version). A file that is damaged, of another
version or not an export is a ``dagjax.io.CheckpointError``.
"""

from dagjax.export._exporting import export_model as export_model
from dagjax.export._format import Spec as Spec
from dagjax.export._loaded import ExportedModel as ExportedModel
from dagjax.export._loading import load as load
