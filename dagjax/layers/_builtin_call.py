"""A built-in layer's ``call`` overridden the Keras way: ``class Scaled(layers.Dense)`` whose ``call(inputs)``
returns ``super().call(inputs) * 2``.

The subclass's ``call`` runs as a Keras-style one (``layers._keras_style``),
on the built-in's declared weights. Inside it, ``super().call(x, ...)`` reaches
the built-in: a built-in ``call(params, *inputs)`` gets the bound params; a
built-in that implements ``apply`` (BatchNormalization, Dropout, the RNNs,
GlobalAveragePooling1D...) runs that ``apply`` on the bound params and state,
in the running call's training mode (or the ``training=`` given), with a key of
its own and the padding mask, and its new state becomes the layer's. As in
Keras, the built-in sees a Keras mask only when ``super().call`` is given
``mask=``; the subclass's ``call`` gets its inputs' masks when it takes ``mask``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from dagjax.layers import _keras_style
from dagjax.layers._keras_scope import innermost_binding


def overrides_builtin_call(cls: type) -> bool:
    """A subclass of a dagjax-style layer (``Dense``...) whose own ``call`` is Keras's ``call(inputs)``."""
    if _keras_style.is_keras_style(cls) or "call" not in vars(cls):
        return False
    return not _takes_params_first(cls.call)


def _takes_params_first(call: Any) -> bool:
    arguments = [p for p in inspect.signature(call).parameters.values() if p.name != "self"]
    return bool(arguments) and arguments[0].name == "params"


def takes_mask(cls: type) -> bool:
    """Whether the class's ``call`` takes ``mask`` (Keras then passes it its inputs' masks)."""
    return "mask" in inspect.signature(cls.call).parameters


def taking_bound_params(call: Any) -> Any:
    """A built-in ``call(params, *inputs)`` that, called without params by a subclass's Keras-style
    ``call`` (``super().call(inputs)``), takes the params of that running call (or runs the built-in's
    ``apply``, for a built-in that implements one)."""
    @functools.wraps(call)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args and reaches_builtin(self, args[0]):
            if self._builtin_apply is not None:
                return builtin_call(self, args, kwargs)
            return call(self, innermost_binding().params, *args, **kwargs)
        return call(self, *args, **kwargs)

    return wrapper


def reaches_builtin(layer: Any, first_argument: Any) -> bool:
    """Whether a ``call`` of ``layer`` given this first argument is ``super().call(inputs)`` from its own
    running Keras-style ``call`` (inputs, not params, come first)."""
    scope = innermost_binding()
    return scope is not None and scope.layer is layer and not isinstance(first_argument, dict)


def apply_over_builtin(
    self: Any, params: dict, state: dict, *inputs: Any, training: bool = False, rng: Any = None,
    input_mask: Any = None, mask: Any = None, hyperparams: Any = None, **call_options: Any,
) -> tuple[Any, dict]:
    """``apply`` of a subclass whose Keras-style ``call`` overrides a built-in that implements ``apply``.

    The padding ``mask`` and ``hyperparams`` are the built-in's, kept for ``super().call``; the inputs'
    Keras masks (when ``call`` takes ``mask``) and the call's options go to ``call``.
    """
    builtin = {key: value for key, value in (("mask", mask), ("hyperparams", hyperparams))
               if value is not None}
    masks = _keras_style.call_mask_kwargs(input_mask) if takes_mask(type(self)) else {}
    return _keras_style.apply(self, params, state, *inputs, training=training, rng=rng,
                              builtin_options=builtin, **masks, **call_options)


def builtin_call(layer: Any, args: tuple, kwargs: dict) -> Any:
    """``super().call(*args, **kwargs)`` inside the layer's running ``call``: the built-in's ``apply`` on the
    bound weights; its new state becomes the layer's."""
    scope = innermost_binding()
    training = kwargs.pop("training", None)
    training = scope.training if training is None else bool(training)
    keras_mask = kwargs.pop("mask", None)
    options = {**scope.builtin_options, **kwargs}
    if keras_mask is not None:
        if "input_mask" not in inspect.signature(layer._builtin_apply).parameters:
            raise TypeError(
                f"Layer '{layer.name}' ({type(layer).__name__}): super().call(..., mask=...) reaches a "
                "built-in layer that reads no Keras mask in dagjax; leave mask= out."
            )
        options["input_mask"] = (keras_mask, *[None] * (len(args) - 1))
    params, state = scope.subtrees(layer, ())
    rng = scope.sublayer_rng() if layer.uses_rng else None
    out, new_state = layer._builtin_apply(params, state, *args, training=training, rng=rng, **options)
    if new_state and not scope.declaring:
        scope.set_state((), new_state)
    return out
