"""Process-wide settings, all opt-in: importing or compiling dagjax changes nothing in the process.

- ``switches``: the fit session's speed heuristics (``fuse_steps``, ``donate``,
  ``host_optimizer_init``, ``hold_full_collections``), each on by default but
  the last; set one to False to run the plain path. ``DAGJAX_HOLD_GC=1``
  turns ``hold_full_collections`` on. ``keep_start_state`` keeps a host
  copy of the weights a ``fit`` starts from, given back if a step fails on the
  device (by default on accelerators, and on the CPU when the steps call the
  host or may not fit in memory, the ways they fail there; True or False forces it).
- ``enable_compilation_cache(path=None)``: JAX's persistent compilation cache,
  so a second run of a script loads its compiled programs from disk.
  ``DAGJAX_COMPILATION_CACHE=1`` (or a directory) does the same at ``compile``.
- ``set_dtype_policy(name)`` / ``dtype_policy()``: Keras's ``keras.config``
  names for ``dagjax.mixed_precision.set_global_policy`` / ``global_policy``
  (float32 until set; layers take it when they are made).

- ``lowering``: how convolutions and recurrent loops become XLA
  (``layers._lowering``): each Conv/ConvTranspose/Depthwise/SeparableConv
  call offers equal lowerings (``"xla"``, ``"im2col"``, ``"shifted"``), each
  SimpleRNN/LSTM/GRU ``"scan"`` or (fixed lengths up to 32 steps)
  ``"unrolled"``, and ``fit`` times them once per shape signature and
  backend, keeping the fastest (cached on disk).
  ``lowering.enabled = False``: the reference (XLA's convolution, ``lax.scan``) everywhere;
  ``lowering.measure = False``: no timing, the backend's defaults;
  ``lowering.force = "im2col"`` (or ``{layer or class name: lowering}``), or
  ``layer.lowering = ...`` for one layer: an override.
- ``lowering_choices(model)``: what each layer was lowered as, per signature.

>>> import dagjax as dj
>>> dj.config.switches.fuse_steps = False     # one step per compiled call, always
"""

from dagjax.layers._lowering import LoweringSettings as LoweringSettings
from dagjax.layers._lowering import choices as _choices
from dagjax.layers._lowering import settings as _lowering_settings
from dagjax.mixed_precision import dtype_policy as dtype_policy
from dagjax.mixed_precision import set_dtype_policy as set_dtype_policy
from dagjax.training.fit import Switches as Switches
from dagjax.training.fit import enable_compilation_cache as enable_compilation_cache
from dagjax.training.fit import switches as switches

lowering = _lowering_settings


def lowering_choices(model) -> dict[str, dict[str, str]]:
    """``{layer name: {signature: lowering}}``: how ``model``'s layers were lowered in their latest traces."""
    return _choices(model.layers)
