"""Keras's training, printing and file methods on ``Model``: each hands the call to the package that does it.

``compile`` makes a :class:`~dagjax.training.fit.FitSession`, which owns
everything training carries (optimizer state, step, compiled loops);
``fit``, ``evaluate`` and the ``*_on_batch`` methods run on it, ``predict``
needs none, ``summary`` is :mod:`dagjax.utils`'s, ``save`` / ``load_weights``
are :mod:`dagjax.io`'s and ``export`` is :mod:`dagjax.export`'s. The imports sit
inside the methods: the model package imports nothing above it
(``tests/test_layering.py`` lists these methods).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

# Keras's overridable step methods. dagjax's fit runs one compiled pure step and calls none of them
# (but a pure ``train_step(self, train_state, batch, rng)``), so a subclass that defines one is refused
# rather than silently trained with the standard step.
_KERAS_STEP_METHODS = ("train_step", "test_step", "predict_step", "compute_loss", "compute_metrics")
_PURE_STEP = "train_step(self, train_state, batch, rng) -> (train_state, logs)"


def has_pure_train_step(cls: type) -> bool:
    """Whether ``cls`` defines dagjax's pure ``train_step(self, train_state, batch, rng)``."""
    step = getattr(cls, "train_step", None)
    if step is None:
        return False
    parameters = [p for p in inspect.signature(step).parameters.values() if p.name != "self"]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return len(parameters) == 3 and all(p.kind in positional for p in parameters)


def _takes_keras_jax_state(step: Any) -> bool:
    """Whether ``step`` is Keras's JAX-backend ``train_step(self, state, data)``."""
    names = [p.name for p in inspect.signature(step).parameters.values() if p.name != "self"]
    return names == ["state", "data"]


class KerasFacade:
    """``compile`` / ``fit`` / ``evaluate`` / ``predict`` / ``summary`` / ``save`` / ``export``, delegated."""

    _session: Any = None
    name: str
    step_trainer: Any = None  # while fit traces a custom train_step: the trainer of that batch layout

    # ------------------------------------------------------------------ training: the session compile makes
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        steps_per_execution: int | str = "auto",
        seed: int | None = None,
        *,
        run_eagerly: bool = False,
        jit_compile: bool | str = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Set the optimizer (optax transformation or Keras name), losses and metrics for training.

        Makes a new training session: the weights stay, the optimizer state starts
        afresh, as in Keras. ``run_eagerly`` and ``jit_compile`` are accepted at the
        values that describe what dagjax always does. ``auto_scale_loss``: a model
        computing in float16 (``mixed_float16``) trains with its optimizer in a
        ``LossScaleOptimizer``, as in Keras; False trains with it as given. ``seed``
        (Dropout's draws and the shuffles) defaults to ``dagjax.utils.set_random_seed``'s, else 0.
        """
        from dagjax.training.fit import FitSession

        self._refuse_step_overrides()
        self._session = FitSession(
            self, optimizer, loss, loss_weights, metrics, weighted_metrics, steps_per_execution, seed,
            run_eagerly=run_eagerly, jit_compile=jit_compile, auto_scale_loss=auto_scale_loss,
        )

    @property
    def fit_session(self) -> Any:
        """The training session ``compile`` made (optimizer, its state, step, compiled loops); None before."""
        return self._session

    @property
    def compiled(self) -> bool:
        """Whether ``compile`` has been called."""
        return self._session is not None

    @property
    def optimizer(self) -> Any:
        """The optimizer ``compile`` was given, as an optax transformation (None before ``compile``)."""
        return None if self._session is None else self._session.optimizer

    @property
    def loss(self) -> Any:
        """The ``loss`` argument ``compile`` was given (None before ``compile``)."""
        return None if self._session is None else self._session.loss

    @property
    def opt_state(self) -> Any:
        """The optimizer state (after ``fit``: the trained one); created on first use after ``compile``."""
        return self._compiled_session("read opt_state").opt_state

    @opt_state.setter
    def opt_state(self, value: Any) -> None:
        self._compiled_session("set opt_state").opt_state = value

    @property
    def stop_training(self) -> bool:
        """Set by a callback (as in Keras) to end ``fit`` after this batch or epoch: the session's flag."""
        return self._session is not None and self._session.stop_training

    @stop_training.setter
    def stop_training(self, value: bool) -> None:
        self._compiled_session("stop training").stop_training = bool(value)

    @property
    def stop_evaluating(self) -> bool:
        """Set by a callback (as in Keras) to end ``evaluate`` after the current batch; the session's flag."""
        return self._session is not None and self._session.stop_evaluating

    @stop_evaluating.setter
    def stop_evaluating(self, value: bool) -> None:
        self._compiled_session("stop evaluating").stop_evaluating = bool(value)

    def _build_for_data(self, x: Any) -> None:
        """Build from the first data given (a ``Sequential`` started without an input shape); else nothing."""

    @property
    def trainer(self) -> Any:
        """compile's losses, metrics and optimizer as pure functions (``dagjax.training.core.Trainer``).

        Inside a custom ``train_step``: the ones for the batch being traced (``batch_loss``, ``count_batch``,
        ``optimizer``, ``metric_results``); elsewhere those for targets shaped like the outputs.
        """
        if self.step_trainer is not None:
            return self.step_trainer
        return self._compiled_session("read the trainer of").trainer_for([None] * len(self.output_names))

    def _refuse_step_overrides(self) -> None:
        """Fail, naming the method, when a subclass defines a Keras step method dagjax would not call."""
        klass = type(self)
        defined = [name for name in _KERAS_STEP_METHODS if hasattr(klass, name)]
        if has_pure_train_step(klass):
            defined.remove("train_step")
        if not defined:
            return
        if defined[0] == "train_step" and _takes_keras_jax_state(klass.train_step):
            raise NotImplementedError(
                f"{klass.__name__}.train_step{inspect.signature(klass.train_step)} is Keras's JAX-backend "
                "form over lists of variables (stateless_call, optimizer.stateless_apply, metric variables), "
                f"which fit does not call. Write the pure form, {_PURE_STEP}, over the TrainState pytree: "
                "README, 'A custom training step'. model.stateless_call and optimizer.stateless_apply "
                "themselves work in a loop of your own (jax.jit it)."
            )
        if defined[0] == "train_step":
            raise NotImplementedError(
                f"{klass.__name__}.train_step{inspect.signature(klass.train_step)} is Keras's stateful form "
                "(self.optimizer.apply, metric.update_state; or the JAX backend's stateless_call / "
                f"optimizer.stateless_apply), which dagjax does not run. Write the pure form, {_PURE_STEP}, "
                "over the TrainState pytree: README, 'A custom training step'."
            )
        raise NotImplementedError(
            f"{klass.__name__} defines {', '.join(defined)}, which dagjax does not call: fit, evaluate and "
            f"predict run compiled pure steps, and only a pure {_PURE_STEP} replaces the default one. "
            f"Remove {defined[0]}, or move its work into such a train_step."
        )

    def _compiled_session(self, what: str) -> Any:
        if self._session is None:
            raise ValueError(f"You must call compile() before you {what} model '{self.name}'.")
        return self._session

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: list | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int | list = 1,
    ) -> Any:
        """Train for ``epochs`` epochs; returns a ``History`` with one value per epoch for each log."""
        from dagjax.callbacks import callback_list

        self._build_for_data(x)
        session = self._compiled_session("fit")
        return session.fit(
            x, y, batch_size, epochs, verbose, callback_list(callbacks, verbose, add_history=True),
            validation_split, validation_data, shuffle, class_weight, sample_weight, initial_epoch,
            steps_per_epoch, validation_steps, validation_batch_size, validation_freq,
        )

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: list | None = None,
        return_dict: bool = False,
    ) -> float | list | dict:
        """Loss and metrics on ``x``/``y``: a scalar, a list in Keras's order, or a dict."""
        from dagjax.callbacks import callback_list

        self._build_for_data(x)
        session = self._compiled_session("evaluate")
        run = callback_list(callbacks, verbose)
        return session.evaluate(x, y, batch_size, verbose, sample_weight, steps, run, return_dict)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        steps: int | None = None,
        callbacks: list | None = None,
    ) -> Any:
        """Outputs for ``x`` as numpy arrays, in the model's output structure (no ``compile`` needed)."""
        from dagjax.callbacks import callback_list
        from dagjax.training.fit import predict

        self._refuse_step_overrides()
        self._build_for_data(x)
        return predict(self, x, batch_size, verbose, steps, callback_list(callbacks, verbose))

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: dict | None = None,
        return_dict: bool = False,
    ) -> float | list | dict:
        """One optimizer step on this batch; its loss and metrics as ``evaluate`` gives them."""
        self._build_for_data(x)
        session = self._compiled_session("use train_on_batch on")
        return session.train_on_batch(x, y, sample_weight, class_weight, return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> float | list | dict:
        """Loss and metrics of this batch in inference mode: a scalar, a list in Keras's order, or a dict."""
        self._build_for_data(x)
        return self._compiled_session("use test_on_batch on").test_on_batch(x, y, sample_weight, return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Outputs for this batch as numpy arrays, in the model's output structure."""
        from dagjax.training.fit import predict_on_batch

        self._build_for_data(x)
        return predict_on_batch(self, x)

    # ------------------------------------------------------------------ printing: dagjax.utils
    def summary(
        self,
        line_length: int | None = None,
        *,
        print_fn: Callable[..., Any] | None = None,
        expand_nested: bool = False,
        show_trainable: bool = False,
    ) -> None:
        """Print layers, output shapes, parameter counts and connections, as Keras."""
        from dagjax.utils import summary

        summary(self, line_length, print_fn, expand_nested=expand_nested, show_trainable=show_trainable)

    # ------------------------------------------------------------------ files: dagjax.io
    def save(
        self, filepath: Any, overwrite: bool = True, include_optimizer: bool = True, *, format: str = "dagjax"
    ) -> None:
        """Save architecture, params, state and trained optimizer state to one file (atomically).

        ``format="keras"``: a Keras 3 ``.keras`` file instead, without the optimizer state.
        """
        from dagjax.io import save_model

        save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer, format=format)

    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Save params, state and trained optimizer state to one file (atomically)."""
        from dagjax.io import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any, skip_optimizer: bool = False, by_name: bool = False) -> None:
        """Load a file from ``save`` or ``save_weights``, matched by structure (or by name); checked first."""
        from dagjax.io import load_weights

        load_weights(self, filepath, skip_optimizer=skip_optimizer, by_name=by_name)

    # ------------------------------------------------------------------ export: dagjax.export
    def export(
        self,
        filepath: Any,
        format: str = "jax",
        *,
        platforms: str | tuple[str, ...] | None = None,
        params_as_argument: bool = False,
        constraints: tuple[str, ...] = (),
    ) -> None:
        """Write the inference function as StableHLO (``jax.export``) for ``dagjax.export.load`` (atomically).

        ``format``: only ``"jax"``, dagjax's own. ``platforms``: by default this
        process's backend, or several, such as ``("cpu", "cuda")``.
        ``params_as_argument``: the loaded function takes ``params=`` and
        ``state=`` at each call instead of holding these weights. ``constraints``:
        what the program may assume of the open (None) sizes, such as
        ``("text_axis1 >= 5",)``; see :func:`dagjax.export.export_model`.
        """
        from dagjax.export import export_model

        export_model(
            self, filepath, format, platforms=platforms, params_as_argument=params_as_argument,
            constraints=constraints,
        )
