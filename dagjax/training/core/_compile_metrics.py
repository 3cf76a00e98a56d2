"""Keras's ``compile_metrics``: compile's metrics as one metric object, as ``model.metrics`` lists it.

A step written for Keras's JAX backend loops over ``self.metrics``, slices
``metrics_variables`` by each metric's ``len(metric.variables)`` and calls
``metric.stateless_update_state(variables, y, y_pred, sample_weight=...)``. Keras
puts every compiled metric behind one object named ``compile_metrics`` whose
variables are theirs, one after another, and whose result is a dict of their
values by log name; this is that object over a trainer's ``metric_entries``
(one per compiled metric: log name, metric, output index, weighted).
"""

from __future__ import annotations

from typing import Any

from dagjax.training.core._trainer import flatten_outputs, flatten_targets, in_float32


class CompileMetrics:
    """compile's metrics as one Keras metric: ``variables`` and the ``stateless_*`` methods over them."""

    name = "compile_metrics"

    def __init__(self, metric_entries: tuple, output_names: list[str], output_structure: Any = None) -> None:
        self.entries, self.output_names = metric_entries, list(output_names)
        self.output_structure = output_structure

    @property
    def variables(self) -> list:
        """Every compiled metric's variables, in compile's order."""
        return [v for _, metric, _, _ in self.entries for v in metric.variables]

    def stateless_reset_state(self) -> list:
        """The initial values of :attr:`variables`."""
        return [v for _, metric, _, _ in self.entries for v in metric.stateless_reset_state()]

    def stateless_update_state(
        self, metric_variables: list, y_true: Any, y_pred: Any, sample_weight: Any = None
    ) -> list:
        """The variables after counting one batch: each metric on its output (weighted ones with the
        sample weights), as Keras's ``CompileMetrics``."""
        targets = flatten_targets(y_true, self.output_names, self.output_structure)
        preds = [in_float32(p) for p in flatten_outputs(y_pred)]
        weights = sample_weight if isinstance(sample_weight, (list, tuple)) else [sample_weight] * len(preds)
        new: list = []
        for part, (_, metric, output, weighted) in zip(self._split(metric_variables), self.entries):
            weight = weights[output] if weighted else None
            new += metric.stateless_update_state(part, targets[output], preds[output], sample_weight=weight)
        return new

    def stateless_result(self, metric_variables: list) -> dict:
        """Each compiled metric's value by its log name."""
        parts = self._split(metric_variables)
        return {name: metric.stateless_result(part) for part, (name, metric, *_) in zip(parts, self.entries)}

    def assign_variables(self, metric_variables: list) -> None:
        """Hold ``metric_variables`` (a list in :attr:`variables` order) in the compiled metrics."""
        for part, (_, metric, _, _) in zip(self._split(metric_variables), self.entries):
            metric.assign_variables(part)

    def result(self) -> dict:
        """Each compiled metric's held value by its log name, as Keras's ``CompileMetrics.result()``."""
        return {name: metric.result() for name, metric, _, _ in self.entries}

    def reset_state(self) -> None:
        """Every compiled metric's held state back to its start."""
        for _, metric, _, _ in self.entries:
            metric.reset_state()

    def _split(self, metric_variables: list) -> list[list]:
        sizes = [len(metric.variables) for _, metric, _, _ in self.entries]
        if len(metric_variables) != sum(sizes):
            raise ValueError(
                f"compile_metrics has {sum(sizes)} variables (those of "
                f"{', '.join(name for name, *_ in self.entries)}), got a list of {len(metric_variables)}: "
                "slice metrics_variables by len(metric.variables) for each metric of self.metrics."
            )
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        return [list(metric_variables[s : s + n]) for s, n in zip(starts, sizes)]

    def __repr__(self) -> str:
        return f"CompileMetrics({[name for name, *_ in self.entries]})"
