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

# Keras's overridable step methods. dagjax's fit runs one compiled pure step and calls only these forms of
# them: the pure ``train_step(self, train_state, batch, rng)``, and Keras's JAX-backend
# ``train_step(self, state, data)`` / ``test_step(self, state, data)`` (``training/core/_keras_step.py``) and
# ``predict_step(self, state, data)`` (``training/core/_keras_predict.py``).
# A subclass that defines another is refused rather than silently trained with the standard step.
_KERAS_STEP_METHODS = ("train_step", "test_step", "predict_step", "compute_loss", "compute_metrics")
_PURE_STEP = "train_step(self, train_state, batch, rng) -> (train_state, logs)"
_KERAS_JAX_STEP = "train_step(self, state, data) -> (logs, state)"


def _positional_count(method: Any) -> int | None:
    """Positional parameters after ``self``; None when it takes any other kind."""
    parameters = [p for p in inspect.signature(method).parameters.values() if p.name != "self"]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return len(parameters) if all(p.kind in positional for p in parameters) else None


def _own(cls: type, name: str) -> Any:
    """``cls``'s ``name`` where a subclass defines it (not the base model's), else None."""
    method = getattr(cls, name, None)
    return None if method is None or method is getattr(KerasFacade, name, None) else method


def has_pure_train_step(cls: type) -> bool:
    """Whether ``cls`` defines dagjax's pure ``train_step(self, train_state, batch, rng)``."""
    step = _own(cls, "train_step")
    return step is not None and _positional_count(step) == 3


def has_keras_step(cls: type, name: str) -> bool:
    """Whether ``cls`` defines Keras's JAX-backend ``train_step`` / ``test_step`` / ``predict_step``
    (``name``): ``(self, state, data)``."""
    step = _own(cls, name)
    return step is not None and _positional_count(step) == 2


def has_own_train_step(cls: type) -> bool:
    """Whether ``cls`` trains with a step of its own (the pure form or Keras's JAX-backend form)."""
    return has_pure_train_step(cls) or has_keras_step(cls, "train_step")


class KerasFacade:
    """``compile`` / ``fit`` / ``evaluate`` / ``predict`` / ``summary`` / ``save`` / ``export``, delegated."""

    _session: Any = None
    name: str
    step_trainer: Any = None  # while fit traces a custom train_step: the trainer of that batch layout
    step_optimizer: Any = None  # while fit traces a Keras-form step: the optimizer over its variable lists

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
        """The optimizer ``compile`` was given, as an optax transformation (None before ``compile``).

        Inside a Keras-form ``train_step``: the same, with ``stateless_apply`` over that step's lists.
        """
        if self.step_optimizer is not None:
            return self.step_optimizer
        return None if self._session is None else self._session.optimizer

    @property
    def loss(self) -> Any:
        """The ``loss`` argument ``compile`` was given (None before ``compile``)."""
        return None if self._session is None else self._session.loss

    @property
    def metrics(self) -> list:
        """Keras's ``model.metrics``: the loss tracker (``loss``), compile's metrics as one
        ``compile_metrics`` object, then the metrics set as the model's attributes ([] before ``compile``).

        A Keras-form ``train_step`` loops over them with their ``stateless_*`` methods; fit resets them
        at each epoch's start. A subclass may override this property to list its own.
        """
        return [] if self._session is None else self._session.keras_metrics()

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        """compile's losses on ``y`` and ``y_pred``, weighted and summed, plus the weight regularizers'
        penalty, as Keras's ``compute_loss`` (``x`` and ``training`` are not used, as in Keras)."""
        return self._compiled_session("compute the loss of").compute_loss(y, y_pred, sample_weight)

    def stateless_compute_loss(
        self,
        trainable_variables: list,
        non_trainable_variables: list,
        metrics_variables: list,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> tuple[Any, tuple]:
        """:meth:`compute_loss` with the weight penalty taken at ``trainable_variables`` (so it is
        differentiated with them): ``(loss, (trainable, non_trainable, metrics variables))``, as Keras's;
        with several trained outputs, each output's loss counted in its ``<output>_loss`` tracker's values."""
        session = self._compiled_session("compute the loss of")
        loss = session.compute_loss(y, y_pred, sample_weight, trainable_variables)
        metrics_variables = session.count_output_losses(y, y_pred, sample_weight, metrics_variables)
        return loss, (trainable_variables, non_trainable_variables, metrics_variables)

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
        defined = [name for name in _KERAS_STEP_METHODS if _own(klass, name) is not None]
        supported = {name: has_keras_step(klass, name) for name in ("test_step", "predict_step")}
        supported["train_step"] = has_own_train_step(klass)
        if supported["train_step"] and supported["test_step"]:  # both steps are the user's: they call these
            supported.update(compute_loss=True, compute_metrics=True)
        defined = [name for name in defined if not supported.get(name)]
        if not defined:
            return
        name = defined[0]
        if name in ("train_step", "test_step", "predict_step"):
            pure = f", or the pure form, {_PURE_STEP}: README, 'A custom training step'"
            pure = pure if name == "train_step" else ""
            jax_form = _KERAS_JAX_STEP.replace("train_step", name)
            if name == "predict_step":
                jax_form = "predict_step(self, state, data) -> (outputs, non_trainable_variables)"
            raise NotImplementedError(
                f"{klass.__name__}.{name}{inspect.signature(getattr(klass, name))} is Keras's stateful form "
                "(self(x), self.optimizer.apply, metric.update_state), which dagjax does not run. Write "
                f"Keras's JAX-backend form, {jax_form}, over stateless_call, optimizer.stateless_apply and "
                f"the metrics' stateless methods{pure}."
            )
        raise NotImplementedError(  # compute_loss or compute_metrics
            f"{klass.__name__} defines {name}, which only steps of your own call here: fit and "
            f"evaluate run compiled steps that use compile's losses and metrics. Define both "
            f"{_KERAS_JAX_STEP} and test_step(self, state, data) that call it, or remove {name}."
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
