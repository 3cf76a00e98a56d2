"""``ExportedModel``: a loaded export, called like the model: ``loaded(x)`` gives ``model.predict(x)``."""

from __future__ import annotations

from typing import Any

import jax

from dagjax.export._arguments import checked_inputs, checked_weights, shape_text
from dagjax.export._format import Signature, Spec


class ExportedModel:
    """The inference function of a model, loaded from a file that :func:`dagjax.export.export_model` wrote.

    Call it on inputs as ``model.predict`` takes them (a dict by input name, a
    list in input order, or one array), for any batch size; it gives JAX arrays
    in the model's output structure (one array, a list, or a dict by output
    name). It can be called under ``jax.jit`` and ``jax.vmap``. ``exported`` is
    the underlying ``jax.export.Exported``.
    """

    def __init__(self, signature: Signature, exported: jax.export.Exported) -> None:
        self._signature = signature
        self.exported = exported

    @property
    def name(self) -> str:
        """The exported model's name."""
        return self._signature.name

    @property
    def inputs(self) -> list[Spec]:
        """Each input's name, shape (a symbol, such as ``"batch"``, where any size goes) and dtype."""
        return list(self._signature.inputs)

    @property
    def outputs(self) -> list[Spec]:
        """Each output's name, shape and dtype, in ``output_names`` order."""
        return list(self._signature.outputs)

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self._signature.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self._signature.outputs]

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms the program was lowered for: it runs on these only."""
        return self._signature.platforms

    @property
    def constraints(self) -> tuple[str, ...]:
        """What the program assumes of the open sizes, as ``export`` was told (``"text_axis1 >= 5"``)."""
        return self._signature.constraints

    @property
    def params_as_argument(self) -> bool:
        """Whether each call takes ``params=`` and ``state=`` (else the weights are in the program)."""
        return self._signature.weights == "arguments"

    def __call__(self, inputs: Any, params: Any = None, state: Any = None) -> Any:
        """The outputs for ``inputs``, as ``model.apply(params, state, inputs)`` gives them (inference)."""
        weights = self._weights(params, state)
        arrays = checked_inputs(inputs, self._signature.inputs, self.name)
        try:
            flat = self.exported.call(*weights, *arrays)
        except ValueError as err:
            explained = self._explained(err)
            if explained is None:
                raise
            raise explained from err
        return self._structured(flat)

    def _explained(self, err: ValueError) -> ValueError | None:
        """jax.export's error for a call on another platform, or one that breaks a constraint, explained."""
        if "was exported for platforms" in str(err):
            return ValueError(
                f"Exported model '{self.name}' was lowered for {self.platforms} only, and JAX runs this "
                f"call on '{jax.export.default_export_platform()}'. Export it again with that platform "
                "among platforms=(...)."
            )
        if self.constraints:
            shapes = ", ".join(f"'{s.name}' {shape_text(s.shape)}" for s in self.inputs)
            return ValueError(
                f"Exported model '{self.name}' failed on these inputs ({err}). It was exported assuming "
                f"{list(self.constraints)} of its inputs' sizes ({shapes}): check the inputs meet that."
            )
        return None

    def _weights(self, params: Any, state: Any) -> tuple:
        """The leading arguments: none for baked-in weights, else ``params`` and ``state``, checked."""
        if not self.params_as_argument:
            if params is not None or state is not None:
                raise ValueError(
                    f"Exported model '{self.name}' holds its weights as constants, so it takes no params or "
                    "state; export with params_as_argument=True to give them at each call."
                )
            return ()
        arguments = self._signature.arguments
        if params is None or (state is None and arguments["state"]):
            raise ValueError(
                f"Exported model '{self.name}' takes its weights at each call: loaded(x, params=..., "
                "state=...), such as the model's own params and state"
                + (" (state holds non-trainable weights such as BatchNormalization's statistics)."
                   if arguments["state"] else ", state optional: the model has none.")
            )
        state = {} if state is None else state
        return (
            checked_weights(params, arguments["params"], "params", self.name),
            checked_weights(state, arguments["state"], "state", self.name),
        )

    def _structured(self, flat: tuple) -> Any:
        """The program's flat outputs in the model's output structure."""
        if self._signature.structure == "dict":
            return dict(zip(self.output_names, flat))
        return list(flat) if self._signature.structure == "list" else flat[0]

    def __repr__(self) -> str:
        return (
            f"<ExportedModel name={self.name!r} inputs={self.input_names} outputs={self.output_names} "
            f"platforms={self.platforms}>"
        )
