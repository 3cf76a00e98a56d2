"""Subclassed models: layers made in ``__init__``, a ``call(inputs, training=...)``, traced into a graph.

A ``Model`` subclass made without ``inputs``/``outputs`` is *subclassed*, as in
Keras. dagjax runs its ``call`` once, on symbolic ``Input`` tensors shaped like
the first data (or ``build``'s shape): the layers and ``dagjax.ops`` it calls
record nodes, and the tensors it returns become the outputs of an ordinary
functional graph. From then on the model is that graph: one jitted program,
the same params pytree, summary, plots and files.

``training`` reaches ``call`` as :class:`TracedTraining`: passed on to layers
(``self.dropout(x, training=training)``) it lets them follow ``fit``'s and
``predict``'s mode; branching on it in Python (``if training:``) cannot be
traced once for both modes and says so. ``self.add_loss(t)`` on a symbolic
tensor adds ``t`` (summed) to the training loss, as Keras's.
"""

from __future__ import annotations

import inspect
from typing import Any

from dagjax._graph import SymbolicTensor, is_symbolic
from dagjax.layers import Layer, UntraceableCallError


class TracedTraining:
    """``training`` as a subclassed model's ``call`` is traced with: decided later, by ``apply``."""

    resolved = None  # what a layer call's training= reads it as: follow apply's mode

    def __init__(self, model_name: str) -> None:
        self._model_name = model_name

    def __bool__(self) -> bool:
        raise UntraceableCallError(
            f"Model '{self._model_name}'.call branches on `training` in Python. dagjax traces call once into "
            "a graph that serves both training and inference, so it cannot take one branch: pass "
            "training=training to the layers instead (Dropout, BatchNormalization... follow it), or use "
            "layers whose inference mode is what the other branch did."
        )

    def __repr__(self) -> str:
        return "<training: set by fit/predict>"


def defines_call(cls: type) -> bool:
    """Whether a ``Model`` subclass writes its own ``call`` (what makes a subclassed model)."""
    return cls.call is not Layer.call


def trace_call(model: Any, inputs: Any) -> tuple[Any, list[SymbolicTensor]]:
    """``(outputs, added losses)``: ``model.call(inputs)`` on symbolic tensors, ``add_loss`` values kept."""
    parameters = inspect.signature(type(model).call).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    kwargs: dict = {}
    if "training" in parameters or takes_any:
        kwargs["training"] = TracedTraining(model.name)
    if "mask" in parameters:
        kwargs["mask"] = None
    model._traced_losses = []
    try:
        outputs = model.call(inputs, **kwargs)
    except UntraceableCallError:
        raise
    except TypeError as err:
        raise UntraceableCallError(
            f"Model '{model.name}' ({type(model).__name__}).call could not be traced on symbolic tensors: "
            f"{err} dagjax runs a subclassed model's call once, on symbolic tensors, to make its graph: "
            "write data-dependent choices with dagjax.ops (where, cond-free arithmetic), not Python `if`."
        ) from err
    finally:
        losses, model._traced_losses = model._traced_losses, None
    if isinstance(outputs, tuple):
        outputs = list(outputs)
    return outputs, losses


def add_traced_loss(model: Any, loss: Any) -> bool:
    """Keep ``loss`` when ``model.call`` is being traced and ``loss`` is symbolic; False otherwise."""
    traced = getattr(model, "_traced_losses", None)
    if traced is None or not is_symbolic(loss):
        return False
    traced.append(loss)
    return True
