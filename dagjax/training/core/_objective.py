"""``Objective``: what ``compile`` was told, resolved once to one entry per model output.

``loss``, ``loss_weights``, ``metrics`` and ``weighted_metrics`` come as Keras
takes them: one value for every output, a list in output order, or a dict
keyed by output name. :func:`resolve_objective` turns them into an
:class:`Objective` aligned with ``model.output_names`` (as Keras's
``CompileLoss`` + ``CompileMetrics``); a dict naming an unknown output, or a
list of the wrong length, fails there with the valid output names in the
message. The log names follow ``keras/src/trainers/compile_utils.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp

from dagjax._graph import by_name, is_nested
from dagjax.training.objectives import _losses, _metrics

if TYPE_CHECKING:
    from dagjax.training.objectives._losses import Loss
    from dagjax.training.objectives._metric_base import Metric

_KERAS_SHAPE_PICKED = ("crossentropy", "ce", "accuracy", "acc")


class Objective(NamedTuple):
    """Losses, loss weights and metrics, one entry per output in ``output_names`` order.

    ``losses[i]`` is output ``i``'s loss identifier (None: not trained),
    ``metrics[i]`` / ``weighted_metrics[i]`` its metric identifiers. Shape-picked
    names ("accuracy", "crossentropy") become objects only once the targets'
    shapes are known (:meth:`build_losses`, :meth:`build_metrics`).
    """

    output_names: tuple[str, ...]
    losses: tuple
    loss_weights: tuple[float, ...]
    metrics: tuple[list, ...]
    weighted_metrics: tuple[list, ...]
    listed_losses: tuple[int, ...]  # outputs whose ``<output>_loss`` is logged, in Keras's listing order
    metric_prefixes: tuple[str, ...] = ()  # what each output's metric logs start with; () : its name

    @property
    def trains(self) -> bool:
        """Whether some output has a loss."""
        return any(identifier is not None for identifier in self.losses)

    def needed_targets(self) -> list[bool]:
        """Per output: whether the data must give it targets (it has a loss or a metric)."""
        return [
            identifier is not None or bool(m) or bool(w)
            for identifier, m, w in zip(self.losses, self.metrics, self.weighted_metrics)
        ]

    def loss_log_names(self) -> dict[int, str]:
        """``<output>_loss`` per trained output, in output order; logged only when several are trained."""
        trained = [i for i, identifier in enumerate(self.losses) if identifier is not None]
        if len(trained) < 2:
            return {}
        return {i: f"{self.output_names[i]}_loss" for i in trained}

    def build_losses(self, target_shapes: Sequence[tuple], pred_shapes: Sequence[tuple]) -> list[Loss | None]:
        """Loss objects per output (None where untrained); shape-picked names see the shapes."""
        return [
            None if identifier is None else _losses.get(identifier, y_true_shape=ts, y_pred_shape=ps)
            for identifier, ts, ps in zip(self.losses, target_shapes, pred_shapes)
        ]

    def build_metrics(
        self, target_shapes: Sequence[tuple], pred_shapes: Sequence[tuple]
    ) -> list[tuple[str, Metric, int, bool]]:
        """``(log name, Metric, output index, weighted)`` in Keras's log order, with Keras's names."""
        names = self.output_names
        prefix = len(names) > 1
        entries = []
        taken: dict[str, int] = {}
        for weighted, ids in ((False, self.metrics), (True, self.weighted_metrics)):
            for index, output_ids in enumerate(ids):
                for identifier in output_ids:
                    metric = _metrics.get(identifier, target_shapes[index], pred_shapes[index])
                    output = (self.metric_prefixes or names)[index] if prefix else None
                    log_name = _unique_log_name(metric.name, output, weighted, taken)
                    entries.append((log_name, metric, index, weighted))
        return entries

    def check_targets(
        self, target_shapes: list, pred_shapes: list, weight_shapes: list | None = None
    ) -> None:
        """Fail early, naming the output, when a target's or a sample weight's shape cannot meet its loss."""
        check_target_shapes(self, target_shapes, pred_shapes, weight_shapes)

    def evaluate_order(self, logs: dict, entries: list[tuple]) -> list:
        """``evaluate``'s list result in Keras's order (``Trainer._flatten_metrics_in_order``).

        Keras lists ``loss``, then logs named like a compiled metric's bare name,
        then the per-output losses, then every other log sorted by name (so a
        multi-output model's ``<output>_<metric>`` logs come last, sorted).
        """
        listed = [self.loss_log_names()[i] for i in self.listed_losses]
        order = ["loss", *[metric.name for _, metric, _, _ in entries], *listed]
        known = [logs[name] for name in order if name in logs]  # a name listed twice comes twice, as in Keras
        return known + [logs[name] for name in sorted(logs) if name not in order]


def resolve_objective(
    output_names: Sequence[str],
    loss: Any,
    loss_weights: Any = None,
    metrics: Any = None,
    weighted_metrics: Any = None,
    outputs_are_dict: bool = False,
    output_structure: Any = None,
) -> Objective:
    """``compile``'s arguments as an :class:`Objective`; unknown names and misshapen arguments fail here.

    ``outputs_are_dict``: the model was built with a dict of outputs, so a dict
    ``loss`` lists the per-output losses in its own key order, as Keras does.
    ``output_structure``: the model's outputs (``model.output``); each argument may nest as they do.
    """
    names = list(output_names)
    resolved = resolve_losses(loss, loss_weights, names, output_structure)
    metric_ids = resolve_metric_ids(metrics, names, structure=output_structure)
    weighted_ids = resolve_metric_ids(weighted_metrics, names, "weighted_metrics", output_structure)
    for identifier in [m for ids in (*metric_ids, *weighted_ids) for m in ids]:
        if not (isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc")):
            _metrics.get(identifier)  # an unknown metric fails at compile, as in Keras
    trained = [i for i, (identifier, _) in enumerate(resolved) if identifier is not None]
    listed = trained if len(trained) > 1 else []
    if listed and isinstance(loss, dict) and outputs_are_dict:
        first = [names.index(k) for k in loss if k in names and names.index(k) in listed]
        listed = list(dict.fromkeys([*first, *listed]))
    return Objective(
        tuple(names),
        tuple(identifier for identifier, _ in resolved),
        tuple(w for _, w in resolved),
        tuple(metric_ids),
        tuple(weighted_ids),
        tuple(listed),
        metric_prefixes(output_structure),
    )


def metric_prefixes(output_structure: Any) -> tuple[str, ...]:
    """Nested outputs' metric log prefixes: each output's layer name (``d2_mae`` for the output at
    ``others/2``), as Keras's ``CompileMetrics`` names them; () for one output, a list or a dict, whose
    metrics take the output names. Two outputs of one layer are told apart as Keras does (``d2_mae_1``)."""
    if not is_nested(output_structure):
        return ()
    return tuple(tensor.name for tensor in jax.tree_util.tree_leaves(output_structure))


def _check_loss_id(identifier: Any) -> None:
    """Fail at compile time on an unknown loss name (shape-picked names resolve later)."""
    if isinstance(identifier, str) and identifier.lower() in _KERAS_SHAPE_PICKED:
        return
    _losses.get(identifier)


def resolve_losses(
    loss: Any, loss_weights: Any, names: list[str], structure: Any = None
) -> list[tuple[Any, float]]:
    """``(loss identifier or None, weight)`` per output."""
    per_output = by_name(loss, names, "loss", fill=None, broadcast=True, structure=structure)
    for identifier in per_output:
        if identifier is not None:
            _check_loss_id(identifier)
    if loss_weights is None:
        weights = [1.0] * len(names)
    else:
        weights = by_name(loss_weights, names, "loss_weights", fill=1.0, structure=structure)
    return [(identifier, float(w)) for identifier, w in zip(per_output, weights)]


def resolve_metric_ids(
    metrics: Any, names: list[str], what: str = "metrics", structure: Any = None
) -> list[list]:
    """The metric identifiers of each output, as lists."""
    if metrics is None:
        return [[] for _ in names]
    if not isinstance(metrics, (list, tuple, dict)):
        raise ValueError(
            f"`{what}` must be a list, a list of lists or a dict by output name, got {metrics!r}."
        )
    if len(names) == 1 and not isinstance(metrics, dict):  # one output: the list holds its metrics
        return [[m for entry in metrics for m in _as_list(entry)]]
    return [_as_list(entry) for entry in by_name(metrics, names, what, fill=None, structure=structure)]


def _as_list(entry: Any) -> list:
    if entry is None:
        return []
    return list(entry) if isinstance(entry, (list, tuple)) else [entry]






def _unique_log_name(name: str, output: str | None, weighted: bool, taken: dict[str, int]) -> str:
    """Keras's ``CompileMetrics.result`` naming: ``<output>_<name>``; ``_1``, ``weighted_`` on clashes."""
    full = f"{output}_{name}" if output else name
    if full in taken and weighted:
        full = f"{output}_weighted_{name}" if output else f"weighted_{name}"
    if full not in taken:
        taken[full] = 1
        return full
    index = taken[full]
    taken[full] += 1
    return f"{full}_{index}"




def check_target_shapes(
    objective: Objective, target_shapes: list, pred_shapes: list, weight_shapes: list | None = None
) -> None:
    """See :meth:`Objective.check_targets`."""
    probe = 83  # an unusual batch size, so a batch dim never lines up with a feature dim by chance
    names = objective.output_names
    shapes = zip(objective.losses, names, target_shapes, pred_shapes, weight_shapes or [None] * len(names))
    for identifier, name, target, pred, weight in shapes:
        if identifier is None or target is None:
            continue
        loss = _losses.get(identifier, y_true_shape=target, y_pred_shape=pred)
        y_true = jax.ShapeDtypeStruct((probe, *target[1:]), jnp.float32)
        known = [probe, *target[1:]]  # unknown output dims take the target's size where it has one
        filled = [known[i] if d is None and i < len(known) else d for i, d in enumerate((probe, *pred[1:]))]
        y_pred = jax.ShapeDtypeStruct(tuple(probe if d is None else d for d in filled), jnp.float32)
        try:
            values = jax.eval_shape(loss.values, y_true, y_pred)
            ok = values.ndim == 0 or values.shape[0] == probe
            reason = "" if ok else f"the loss values come out with shape {values.shape[1:]} per batch"
        except Exception as err:  # shape errors from the loss function, reported in the user's terms
            ok, reason = False, str(err).split("\n")[0]
        if not ok:
            raise ValueError(
                f"Target for output '{name}' has shape {tuple(target)}, which does not fit the output's "
                f"shape {tuple(pred)} under loss '{loss.name}': {reason}"
            )
        if weight is not None:
            _check_weight_shape(loss, name, y_true, y_pred, weight, values)


def _check_weight_shape(loss, name: str, y_true, y_pred, weight: tuple, values) -> None:
    """Sample weights weigh loss values: one per sample, or per sample and step for sequence losses."""
    probe = jax.ShapeDtypeStruct((y_true.shape[0], *weight[1:]), jnp.float32)
    try:
        jax.eval_shape(lambda t, p, w: loss(t, p, sample_weight=w), y_true, y_pred, probe)
    except Exception:  # noqa: BLE001 -- any failure here is a shape mismatch, reported in the user's terms
        per_sample = tuple(values.shape[1:]) if values.ndim else ()
        raise ValueError(
            f"sample_weight for output '{name}' has shape {tuple(weight)}; the loss '{loss.name}' gives "
            f"{'one value per sample' if not per_sample else f'values of shape {per_sample} per sample'}, so "
            f"pass weights of shape (samples,){'' if not per_sample else f' or (samples, {per_sample[0]})'}."
        ) from None
