"""``predict``: the model's outputs over batches of inputs, from one jitted inference function.

It needs no ``compile``: the inference function is made once per model and
kept as long as the model lives. Batches come from arrays (cut on the host)
or from a stream; a short last batch is padded to the batch size, so one
program serves every batch, and its padding rows are dropped before a
callback or the result sees them.

A model with Keras's JAX-backend ``predict_step(self, state, data)`` runs that step
instead (``training/core/_keras_predict.py``): its batches reach it unpadded, as Keras
gives them (one more compile for a short last batch; padded only where a distribution
splits rows), and the non-trainable values it returns stay in the model, as Keras keeps them.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from dagjax.model._facade import has_keras_step
from dagjax.training.core import keras_predict_function
from dagjax.training.fit import _perf
from dagjax.training.fit._arguments import check_batch_size
from dagjax.training.fit._batching import (
    batch_rows,
    cut,
    epoch_rows,
    pad_batch,
    pass_rows,
    warn_short_epoch,
)
from dagjax.training.fit._data import is_stream, model_inputs, unpack_stream_item
from dagjax.training.fit._distributed import (
    agreed_rows,
    batch_multiple,
    local_batch_size,
    local_outputs,
    place_for_inference,
    place_inputs,
    rows_split,
)
from dagjax.training.fit._streams import stream_pass

if TYPE_CHECKING:
    from dagjax.model import Model

_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forward(model: Model) -> Callable:
    """The model's jitted inference function ``(params, state, x) -> (outputs, state)``, made once per model:
    its ``apply``, or its Keras-form ``predict_step``."""
    if model not in _FORWARD:
        ref = weakref.ref(model)  # the cache must not keep the model alive
        if has_keras_step(type(model), "predict_step"):
            run = lambda p, s, x: keras_predict_function(ref(), ref().predict_step)(p, s, x)
        else:
            run = lambda p, s, x: (ref().apply(p, s, x, training=False)[0], s)

        def forward(params: dict, state: dict, x: list) -> tuple[Any, dict]:
            outputs, state = run(params, state, x)
            # rows_split: in a multi-process run the outputs stay split by rows (the input's sharding, so
            # jit's cache tells the distributions apart); elsewhere it is the identity
            return rows_split(outputs), state

        _FORWARD[model] = _perf.dispatching(jax.jit(forward))
    return _FORWARD[model]


def predict(
    model: Model, x: Any, batch_size: int | None, verbose: int | str, steps: int | None, callbacks: Any
) -> Any:
    """Keras's ``predict``: outputs for ``x`` as numpy arrays, in the model's output structure.

    ``callbacks`` is a ready ``CallbackList`` (it gets the run's ``steps``).
    """
    batch_size = check_batch_size(batch_size)
    if is_stream(x):  # its batches set their own size, as in Keras, which ignores batch_size there
        items = itertools.islice(stream_pass(x), steps)
        batches = (model_inputs(model, unpack_stream_item(item)[0]) for item in items)
        total = steps if steps is not None else (len(x) if hasattr(x, "__len__") else None)
    else:
        inputs = model_inputs(model, x)
        batch_size = local_batch_size(batch_size)  # a multi-process run: this process's share
        size = batch_rows(inputs)
        if size == 0:
            raise ValueError("The data set given to predict is empty: x has 0 samples.")
        batch_size = min(batch_size, size)  # padding follows the data, never the argument
        total = epoch_rows(pass_rows(size, batch_size), steps)
        warn_short_epoch(steps, total)
        batches = cut(inputs, batch_size, 0, total)
    callbacks.configure(model, verbose=verbose, epochs=1, steps=total)
    model.stop_predicting = False
    callbacks.on_predict_begin()
    outputs = _run(model, batches, 1 if is_stream(x) else batch_size, callbacks)
    callbacks.on_predict_end()
    return outputs


def predict_on_batch(model: Model, x: Any) -> Any:
    """Outputs for this one batch as numpy arrays, in the model's output structure."""
    inputs = model_inputs(model, x)
    return _run(model, iter([inputs]), batch_rows(inputs), None)


def _run(model: Model, batches: Iterator, batch_size: int, callbacks: Any) -> Any:
    """Outputs of every batch (padding rows dropped) as numpy; ``callbacks`` may be None.

    Batches are padded to the largest seen so far, at least ``batch_size`` (a
    stream's batches set their own size, as in Keras, which ignores the argument there),
    and under a distribution to a multiple of the devices along its batch axis.
    In a multi-process run every process takes the same steps of the same padded size
    (:func:`agreed_rows`): one whose data ends first, or whose callback stopped it, computes
    padding until all are done, and each gets back the outputs of its own rows.
    """
    forward, multiple = _forward(model), batch_multiple()
    keras_step = has_keras_step(type(model), "predict_step")
    # inference donates nothing: the model keeps them
    params, state = place_for_inference(*model.weights_view())
    outputs, size, last, stopped = [], batch_size, None, False
    batches = iter(batches)
    for step in itertools.count():
        x = None if stopped else next(batches, None)
        counts = agreed_rows(0 if x is None else batch_rows(x))
        if not counts.any():
            break
        if step == 0 and not counts.all():
            raise ValueError(
                f"predict in a {len(counts)}-process run: processes {np.flatnonzero(counts == 0).tolist()} "
                "were given no data. Give every process some of the inputs."
            )
        n = 0 if x is None else batch_rows(x)
        if n and callbacks is not None:
            callbacks.on_predict_batch_begin(step)
        x, last = (last, last) if x is None else (x, x)  # out of data: pad from the last batch, drop it all
        size = -(-max(size, int(counts.max())) // multiple) * multiple  # under a distribution: even splits
        rows = n if keras_step and multiple == 1 and len(counts) == 1 else size  # Keras's step: as it is
        out, new_state = forward(params, state, place_inputs(pad_batch(x, rows)[0]))
        out = local_outputs(out)
        if n == 0:
            continue
        state = new_state if keras_step else state  # Keras keeps what its predict_step returns
        if n < rows:  # a padded batch: its padding rows go before anyone sees them, as in Keras
            out = jax.tree_util.tree_map(lambda v, n=n: v[:n], out)
        outputs.append(out)
        if callbacks is not None:
            callbacks.on_predict_batch_end(step, {"outputs": out})
        stopped = model.stop_predicting
    if not outputs:
        raise ValueError("The data set given to predict is empty.")
    if keras_step:
        model.state = state
    return jax.tree_util.tree_map(lambda *vs: np.concatenate(vs), *jax.device_get(outputs))
