"""The pure training core: a train state pytree and step functions over it.

``build_trainer`` turns a model, per-output losses, loss weights, metrics and
an optax ``GradientTransformation`` into a :class:`Trainer`, a ``NamedTuple``
of pure functions over a :class:`TrainState`. Nothing here holds arrays or
runs Python per step, so research code can ``jit``, ``vmap``, scan, shard or
checkpoint the state itself:

>>> trainer = build_trainer(model, "mse", optax.adam(1e-3))
>>> ts = trainer.init_train_state(*model.init(jax.random.key(0)))
>>> ts, logs = jax.jit(trainer.train_step)(ts, (x, y, None), step_rng(0, ts.step))

``fit`` runs exactly this step: it draws each step's rng with :func:`step_rng`
from ``compile``'s ``seed`` and the step count, and cuts each batch out of
device-resident data with :func:`gather`.

The total loss is ``sum_i loss_weight_i * loss_i`` plus the weight
regularizers' penalty and the activity regularizers' penalty. The loss
weights, Dropout rates and regularizer factors are ``compile``'s and the
layers' numbers, or traced values given to the step as ``hyperparams``
(``core._hyperparams``), so that one compiled step serves many (a
population ``vmap``s it). A batch is
``(x, y)``, ``(x, y, sample_weight)`` or ``(x, y, sample_weight, mask)``;
``mask`` (1.0 real row, 0.0 padding) lets a padded last batch give exactly
the losses and metrics of the unpadded one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dagjax._graph import by_name
from dagjax.training.core._hyperparams import step_values
from dagjax.training.core._objective import Objective, resolve_objective
from dagjax.training.optimizers import _keras as _optimizers
from dagjax.training.optimizers import scaled_value_and_grad

if TYPE_CHECKING:
    from dagjax.layers import Layer
    from dagjax.model import Model


class TrainState(NamedTuple):
    """Everything a training run carries from step to step; a pytree."""

    params: Any
    state: Any
    opt_state: Any
    step: jax.Array
    metrics: dict


class Trainer(NamedTuple):
    """Pure functions over a :class:`TrainState` (see :func:`build_trainer`).

    ``metric_names`` lists the log keys in Keras's order: ``loss``, the
    compiled metrics, then ``<output>_loss`` per output when several outputs
    have a loss. ``host_results(metrics)`` gives the logs as Python floats
    computed with numpy, without compiling a program, when every log is a
    loss (None when some compiled metric needs its own ``result``).
    """

    init_train_state: Callable
    train_step: Callable
    eval_step: Callable
    predict_step: Callable
    reset_metrics: Callable
    metric_results: Callable
    metric_names: tuple
    host_results: Callable
    metric_entries: tuple  # (log name, Metric, output index, weighted) per compiled metric
    hyperparams: Callable  # () -> the step's traced hyperparameters at compile's values
    batch_loss: Callable  # (params, state, batch, rng, training=True) -> (loss, LossAux)
    count_batch: Callable  # (metrics, loss, aux, batch) -> metrics with this batch counted
    optimizer: Any  # the optax transformation the step applies (frozen weights masked, loss-scaled)
    train_results: Callable  # (ts) -> the logs fit shows while training (metric_results, or a custom step's)
    compiled_loss: Callable  # (y, y_pred, sample_weight) -> (compile's weighted loss, {output: its loss})
    exact_batches: bool = False  # the step needs each batch unpadded (Keras's own step form: no mask)


class LossAux(NamedTuple):
    """What :attr:`Trainer.batch_loss` computes besides the loss, for the metrics and the next state."""

    preds: list  # one output per model output, float32
    targets: list  # the batch's targets in output order (None where absent)
    state: Any  # the model's new state (BatchNormalization's moving statistics, ...)
    per_output: dict  # output index -> its loss, for outputs that have one
    masks: list  # per output: its joint Keras and padding mask, or None


def flatten_outputs(structure: Any) -> list:
    """The model's outputs (any nest of them) as a list in ``model.outputs`` order, which names follow."""
    return jax.tree_util.tree_leaves(structure)


def in_float32(pred: jax.Array) -> jax.Array:
    """A half-precision output (a mixed policy's) in float32, as Keras computes losses and metrics."""
    return pred.astype(jnp.float32) if pred.dtype in (jnp.float16, jnp.bfloat16) else pred


def flatten_targets(y: Any, names: list[str], structure: Any = None) -> list:
    """A batch's targets as a list in ``names`` order (``None`` where absent), or an error naming them;
    ``structure``: the model's outputs, which the targets may nest as."""
    return by_name(y, names, "the batch's targets", fill=None, arrays=True, structure=structure)


def trainable_mask(layer: Layer, params: dict, parent_trainable: bool = True) -> dict:
    """A bool per leaf of ``params``: False under any layer with ``trainable=False`` (Keras's freeze)."""
    trainable = parent_trainable and layer.trainable
    subs = layer.sublayers
    return {
        key: trainable_mask(subs[key], value, trainable)
        if key in subs and isinstance(value, dict)
        else jax.tree_util.tree_map(lambda _: trainable, value)
        for key, value in params.items()
    }


def frozen_pruned(params: dict, mask: dict) -> dict:
    """``params`` without the subtrees of frozen layers, so their regularizers add nothing."""
    out = {}
    for key, value in params.items():
        sub = mask[key]
        if isinstance(value, dict):
            if all(jax.tree_util.tree_leaves(sub)):
                out[key] = value
            elif any(jax.tree_util.tree_leaves(sub)):
                out[key] = frozen_pruned(value, sub)
        elif sub:
            out[key] = value
    return out


def _has_frozen(layer: Layer) -> bool:
    return not layer.trainable or any(_has_frozen(sub) for sub in layer.sublayers.values())


def trainable_only(tx: optax.GradientTransformation, model: Model) -> optax.GradientTransformation:
    """``tx`` for the trainable weights alone, as a Keras optimizer sees only trainable variables.

    Weights under a layer with ``trainable=False`` get zero updates and no
    optimizer state (``optax.multi_transform`` with ``optax.set_to_zero``);
    with nothing frozen this is ``tx`` itself. The flags are read now, as
    Keras reads them at ``compile``: freezing a layer later takes a new one.
    """
    if not _has_frozen(model):
        return tx
    abstract, _ = jax.eval_shape(lambda: model.init_weights(jax.random.key(0)))
    label = lambda keep: "train" if keep else "frozen"
    labels = jax.tree_util.tree_map(label, trainable_mask(model, abstract))
    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


def _per_output_weight(sample_weight, index: int):
    """Output ``index``'s sample weights: one array shared by all outputs, or a list with one per output."""
    if isinstance(sample_weight, (list, tuple)):
        return sample_weight[index]
    return sample_weight


def _times_mask(sample_weight, mask):
    """User sample weights times ``mask`` (padding rows, masked timesteps), aligned on their leading axes."""
    if sample_weight is None:
        return mask
    sample_weight = jnp.asarray(sample_weight, jnp.float32)
    rank = max(sample_weight.ndim, mask.ndim)
    expand = lambda a: jnp.reshape(a, a.shape + (1,) * (rank - a.ndim))
    return expand(sample_weight) * expand(mask)


def joint_mask(output_mask: jax.Array | None, row_mask: jax.Array | None) -> jax.Array | None:
    """An output's Keras mask (``(batch, time)`` bools) times the padding-row mask ``(batch,)``, as float32.

    As in Keras, masked timesteps weigh nothing in the output's loss and metrics and leave its count.
    """
    if output_mask is None:
        return row_mask
    joint = jnp.asarray(output_mask, jnp.float32)
    if row_mask is None:
        return joint
    return joint * jnp.reshape(row_mask, row_mask.shape + (1,) * (joint.ndim - 1))


def unpack_batch(batch: tuple | list, names: list[str]) -> tuple:
    """``(x, y, sample_weight, mask)`` from a 2-, 3- or 4-tuple; ``mask`` is None when the batch has none.

    A batch without a mask has no padding: its program leaves out the masking
    arithmetic and the masked batch statistics altogether.
    Per-output sample weights given as a dict by output name become a list in output order.
    """
    if not isinstance(batch, (tuple, list)) or not 2 <= len(batch) <= 4:
        raise ValueError(
            "A batch must be (x, y), (x, y, sample_weight) or (x, y, sample_weight, mask), "
            f"got {type(batch).__name__}"
            + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    x, y, sample_weight, mask = (*batch, None, None)[:4]
    if isinstance(sample_weight, dict):
        sample_weight = by_name(sample_weight, names, "the batch's sample weights", fill=None)
    return x, y, sample_weight, None if mask is None else jnp.asarray(mask, jnp.float32)


def build_trainer(
    model: Model,
    loss: Any,
    optimizer: Any,
    loss_weights: Any = None,
    metrics: Any = None,
    weighted_metrics: Any = None,
    target_shapes: list | None = None,
) -> Trainer:
    """Pure ``init_train_state`` / ``train_step`` / ``eval_step`` / ``predict_step`` for ``model``.

    ``loss``, ``loss_weights``, ``metrics`` and ``weighted_metrics`` take the
    forms Keras's ``compile`` takes. ``optimizer`` is an optax
    ``GradientTransformation`` or a Keras name. ``target_shapes`` (one shape
    per output) lets "accuracy" and "crossentropy" pick their binary, sparse or
    categorical form as Keras does; by default targets are taken to be shaped
    like the outputs.
    """
    objective = resolve_objective(
        model.output_names, loss, loss_weights, metrics, weighted_metrics, output_structure=model.output
    )
    return make_trainer(model, objective, trainable_only(_optimizers.get(optimizer), model), target_shapes)


def make_trainer(
    model: Model, objective: Objective, optimizer: Any, target_shapes: list | None = None
) -> Trainer:
    """:func:`build_trainer` for an :class:`Objective` resolved already (fit makes one per target layout).

    ``optimizer`` is the optax transformation the steps apply as it is (see :func:`trainable_only`).
    """
    names = list(model.output_names)
    pred_shapes = [tuple(t.shape) for t in model.outputs]
    target_shapes = [tuple(s) for s in target_shapes] if target_shapes is not None else pred_shapes
    if len(target_shapes) != len(names):
        raise ValueError(f"target_shapes needs one shape per output {names}, got {len(target_shapes)}.")
    loss_fns = objective.build_losses(target_shapes, pred_shapes)
    weights = objective.loss_weights
    loss_names = objective.loss_log_names()
    metric_entries = tuple(objective.build_metrics(target_shapes, pred_shapes))
    metric_names = ("loss", *[e[0] for e in metric_entries], *loss_names.values())
    tx = optimizer

    tunable = model.tunable()

    def outputs_loss(targets, preds, sample_weight, masks, loss_weights) -> tuple[jax.Array, dict]:
        """``sum_i loss_weight_i * loss_i`` over the outputs with a loss, and each of those losses."""
        per_output = {}
        total = jnp.zeros((), jnp.float32)
        for i, loss_fn in enumerate(loss_fns):
            if loss_fn is None:
                continue
            if targets[i] is None:
                raise ValueError(f"Output '{names[i]}' has a loss but the batch has no target for it.")
            weight = _per_output_weight(sample_weight, i)
            value = loss_fn(targets[i], preds[i], sample_weight=weight, mask=masks[i])
            per_output[i] = jnp.asarray(value, jnp.float32)
            total = total + loss_weights[i] * per_output[i]
        return total, per_output

    def compute_loss(params, state, x, y, sample_weight, mask, training, rng, hyperparams):
        loss_weights, layers = step_values(hyperparams, weights, names, tunable)
        outputs, new_state, activity_penalty, output_masks = model.apply_masked(
            params, state, x, training, rng, mask, layers
        )
        preds = [in_float32(p) for p in flatten_outputs(outputs)]
        targets = flatten_targets(y, names, model.output)
        masks = [joint_mask(output_mask, mask) for output_mask in output_masks]
        total, per_output = outputs_loss(targets, preds, sample_weight, masks, loss_weights)
        frozen = trainable_mask(model, params)
        penalty = model.weight_penalty(frozen_pruned(params, frozen), layers) + activity_penalty
        return total + penalty, LossAux(preds, targets, new_state, per_output, masks)

    tracked = ("loss", *loss_names.values())

    def init_metrics() -> dict:
        # One vector for every loss tracker: a handful of scalar updates would each cost a kernel.
        # Zeros from numpy: no program to compile when called outside jit (every epoch).
        zeros = jax.device_put({"total": np.zeros((len(tracked),), np.float32), "count": np.float32(0)})
        return {"loss": zeros, **{name: metric.init() for name, metric, _, _ in metric_entries}}

    def update_metrics(metric_state, total, aux, x, sample_weight, mask) -> dict:
        preds, targets, _, per_output, masks = aux
        new = dict(metric_state)
        losses = jnp.stack([total, *(per_output[i] for i in loss_names)])
        real = jnp.float32(jax.tree_util.tree_leaves(x)[0].shape[0]) if mask is None else jnp.sum(mask)
        new["loss"] = _mean_update(new["loss"], losses, real)
        for name, metric, i, weighted in metric_entries:
            user = _per_output_weight(sample_weight, i) if weighted else None
            weight = user if masks[i] is None else _times_mask(user, masks[i])
            new[name] = metric.update(new[name], targets[i], preds[i], sample_weight=weight)
        return new

    def init_train_state(params: dict, state: dict) -> TrainState:
        """A fresh train state: optimizer initialised on ``params``, step 0, zeroed metrics."""
        return TrainState(params, state, tx.init(params), jnp.zeros((), jnp.int32), init_metrics())

    def train_step(
        ts: TrainState, batch: tuple, rng: jax.Array | None, hyperparams: dict | None = None
    ) -> tuple[TrainState, dict]:
        """One optimizer step on ``batch`` (training mode, ``rng`` for Dropout); returns running logs.

        ``hyperparams`` (see ``core._hyperparams``) gives traced values in place of compiled numbers.
        """
        x, y, sample_weight, mask = unpack_batch(batch, names)
        grad_fn = scaled_value_and_grad(compute_loss, ts.opt_state)  # loss-scaled under LossScaleOptimizer
        (total, aux), grads = grad_fn(ts.params, ts.state, x, y, sample_weight, mask, True, rng, hyperparams)
        updates, opt_state = tx.update(grads, ts.opt_state, ts.params)
        params = optax.apply_updates(ts.params, updates)
        metric_state = update_metrics(ts.metrics, total, aux, x, sample_weight, mask)
        new_ts = TrainState(params, aux.state, opt_state, ts.step + 1, metric_state)
        return new_ts, metric_results(new_ts)

    def eval_step(ts: TrainState, batch: tuple, hyperparams: dict | None = None) -> TrainState:
        """Accumulate the losses and metrics of ``batch`` in inference mode; params are unchanged."""
        x, y, sample_weight, mask = unpack_batch(batch, names)
        total, aux = compute_loss(ts.params, ts.state, x, y, sample_weight, mask, False, None, hyperparams)
        return ts._replace(metrics=update_metrics(ts.metrics, total, aux, x, sample_weight, mask))

    def predict_step(params: dict, state: dict, x: Any) -> Any:
        """The model's outputs in inference mode, in its output structure."""
        outputs, _ = model.apply(params, state, x, training=False)
        return outputs

    def batch_loss(
        params: dict, state: dict, batch: tuple, rng: jax.Array | None, training: bool = True,
        hyperparams: dict | None = None,
    ) -> tuple[jax.Array, LossAux]:
        """The step's total loss on ``batch`` (compiled losses, weights, penalties) and its :class:`LossAux`.

        Differentiate it with ``jax.value_and_grad(..., has_aux=True)`` in a custom ``train_step``.
        """
        x, y, sample_weight, mask = unpack_batch(batch, names)
        return compute_loss(params, state, x, y, sample_weight, mask, training, rng, hyperparams)

    def count_batch(metrics: dict, loss: jax.Array, aux: LossAux, batch: tuple) -> dict:
        """``metrics`` with ``batch`` counted: its loss (from :func:`batch_loss`) and compiled metrics."""
        x, _, sample_weight, mask = unpack_batch(batch, names)
        return update_metrics(metrics, loss, aux, x, sample_weight, mask)

    def reset_metrics(ts: TrainState) -> TrainState:
        """``ts`` with every loss tracker and metric zeroed."""
        return ts._replace(metrics=init_metrics())

    def metric_results(ts: TrainState) -> dict:
        """Current value of every log, keyed as Keras logs them."""
        results = dict(zip(tracked, _mean_result(ts.metrics["loss"])))
        results.update({name: metric.result(ts.metrics[name]) for name, metric, _, _ in metric_entries})
        return {name: results[name] for name in metric_names}

    def host_results(metrics: dict) -> dict | None:
        """The loss logs as Python floats, computed with numpy; None when a compiled metric needs its own."""
        if metric_entries:
            return None
        trackers = jax.device_get(metrics["loss"])
        count = trackers["count"]
        means = trackers["total"] / count if count > 0 else np.zeros_like(trackers["total"])
        return dict(zip(tracked, means.tolist()))

    def compiled_loss(y: Any, y_pred: Any, sample_weight: Any = None) -> tuple[jax.Array, dict]:
        """compile's losses on these targets and outputs, weighted and summed (no penalties), and each
        output's unweighted loss by output index: Keras's ``CompileLoss``."""
        preds = [in_float32(jnp.asarray(p)) for p in flatten_outputs(y_pred)]
        targets, unmasked = flatten_targets(y, names, model.output), [None] * len(names)
        return outputs_loss(targets, preds, sample_weight, unmasked, weights)

    def hyperparams() -> dict:
        """The step's traced hyperparameters at compile's values: ``{"loss_weights": (outputs,) float32}``."""
        return {"loss_weights": np.asarray(weights, np.float32)}

    return Trainer(
        init_train_state,
        train_step,
        eval_step,
        predict_step,
        reset_metrics,
        metric_results,
        metric_names,
        host_results,
        metric_entries,
        hyperparams,
        batch_loss,
        count_batch,
        tx,
        metric_results,
        compiled_loss,
    )


def step_rng(seed: int, step: jax.Array) -> jax.Array:
    """The rng ``fit`` gives train step ``step`` (for Dropout and other random layers) under ``seed``."""
    return jax.random.fold_in(jax.random.key(seed), step)


def gather(data: tuple, idx: jax.Array, mask: jax.Array | None, row: Any) -> tuple:
    """Batch ``row`` of an epoch as ``fit`` cuts it from device data: ``(x, y, sample_weight[, mask])``.

    ``data`` holds the whole data set's ``(x, y, sample_weight)``, ``idx[row]``
    the batch's sample indices and ``mask[row]`` its padding (None: no padding).
    """
    x, y, sample_weight = jax.tree_util.tree_map(lambda a: a[idx[row]], data)
    return (x, y, sample_weight) if mask is None else (x, y, sample_weight, mask[row])




def _mean_update(state: dict, values, count) -> dict:
    """Batch means weighted by the batch's real sample count, as Keras's loss trackers."""
    return {"total": state["total"] + values * count, "count": state["count"] + count}


def _mean_result(state: dict):
    count = state["count"]
    return jnp.where(count > 0, state["total"] / jnp.where(count > 0, count, 1.0), 0.0)
