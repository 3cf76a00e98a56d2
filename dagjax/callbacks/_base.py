"""Callbacks with Keras 3's hooks: ``Callback``, ``CallbackList``, ``History``, ``ProgbarLogger``.

A callback sees the model through ``self.model`` and the run's settings
through ``self.params`` (``verbose``, ``epochs``, ``steps``). Epoch logs are
Python floats. Batch hooks cost speed: ``fit`` runs many steps per compiled
call, and falls back to one call per step (with logs read back every step)
only when some callback overrides a batch hook. As in Keras, every hook gets
a ``logs`` dict (``{}`` when there is nothing to report), never ``None``.
Setting ``model.stop_training = True`` ends training after the current epoch
(or batch, from a batch hook; from ``on_train_begin`` or ``on_epoch_begin``,
after the epoch's first batch), ``model.stop_evaluating`` and
``model.stop_predicting`` end ``evaluate`` and ``predict`` after the current batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax

from dagjax.callbacks._progbar import Progbar
from dagjax.training.fit import log_value

if TYPE_CHECKING:
    from dagjax.model import Model

_BATCH_HOOKS = {
    "train": ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end"),
    "test": ("on_test_batch_begin", "on_test_batch_end"),
    "predict": ("on_predict_batch_begin", "on_predict_batch_end"),
}


class Callback:
    """Base class: every hook does nothing; override the ones you need.

    ``examples/activation_logger.py`` writes one: at each epoch end it saves
    every layer's activations on a validation sample.
    """

    # Whether batch hooks are fine being called once per compiled chunk of steps with device-side logs
    # (and without the model's weights: they are with the compiled steps meanwhile).
    chunk_safe: bool = False

    def __init__(self) -> None:
        self.params: dict = {}
        self._model: Model | None = None

    def set_params(self, params: dict) -> None:
        """Keep the run's settings (``verbose``, ``epochs``, ``steps``) as ``self.params``."""
        self.params = params

    def set_model(self, model: Model) -> None:
        """Bind the model the hooks reach as ``self.model``."""
        self._model = model

    @property
    def model(self) -> Model | None:
        """The model being fitted, evaluated or run (``None`` before ``set_model``)."""
        return self._model

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Alias run by ``on_train_batch_begin``."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Alias run by ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """At the start of an epoch (training only)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """At the end of an epoch; ``logs`` holds the epoch's results, ``val_`` ones included."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Before a training batch; runs ``on_batch_begin`` unless overridden, as Keras."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """After a training batch (``logs``: running results); runs ``on_batch_end`` unless overridden."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Before a batch in ``evaluate`` (and validation)."""

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """After a batch in ``evaluate``; ``logs`` holds the running results."""

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Before a batch in ``predict``."""

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """After a batch in ``predict``; ``logs["outputs"]`` holds its outputs."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        """At the start of ``fit``."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """At the end of ``fit``; ``logs`` holds the last epoch's results."""

    def on_test_begin(self, logs: dict | None = None) -> None:
        """At the start of ``evaluate`` (and of each validation)."""

    def on_test_end(self, logs: dict | None = None) -> None:
        """At the end of ``evaluate``; ``logs`` holds its results."""

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """At the start of ``predict``."""

    def on_predict_end(self, logs: dict | None = None) -> None:
        """At the end of ``predict``."""


def _overrides(callback: Callback, hook: str) -> bool:
    """Whether ``callback`` defines ``hook``: in its class, or on the instance (``LambdaCallback``)."""
    return hook in vars(callback) or getattr(type(callback), hook) is not getattr(Callback, hook)


def _to_python(logs: dict | None) -> dict | None:
    """Batch logs as floats; ``predict``'s ``outputs`` stay device arrays, as Keras's JAX backend has them."""
    if not logs:
        return logs
    host = jax.device_get({k: v for k, v in logs.items() if k != "outputs"})
    return {k: v if k == "outputs" else log_value(host[k]) for k, v in logs.items()}


class History(Callback):
    """Records each epoch's logs: ``history.history["loss"]`` has one value per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Restart the epoch list; ``history`` itself is kept, as Keras's."""
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Append the epoch and each of its logs, and point ``model.history`` at this callback."""
        self.epoch.append(epoch)
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(value)
        self.model.history = self


class ProgbarLogger(Callback):
    """Prints a progress bar with the running logs (``verbose`` 1), or one line per epoch (2)."""

    chunk_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.verbose = 1
        self.epochs = 1
        self.target = None
        self.progbar: Progbar | None = None
        self._in_fit = False
        self._seen = 0

    def set_params(self, params: dict) -> None:
        """Read ``verbose`` ("auto" means 1), ``epochs`` and ``steps`` (the bar's target, if known)."""
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _start(self):
        self._seen = 0
        self.progbar = Progbar(self.target, verbose=self.verbose)

    def _update(self, batch, logs):
        if self.progbar is None:
            self._start()
        self._seen = batch + 1
        self.progbar.update(self._seen, logs, finalize=False)

    def _finish(self, logs):
        if self.progbar is None:
            self._start()
        if self.progbar.target is None:
            self.progbar.target = self.target = self._seen
        self.progbar.update(self.progbar.target, logs, finalize=True)

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Enter ``fit``: validation runs inside it then draw no bar of their own."""
        self._in_fit = True

    def on_train_end(self, logs: dict | None = None) -> None:
        """Leave ``fit``: a later ``evaluate`` draws its own bar again."""
        self._in_fit = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Start the epoch's bar, headed ``Epoch i/n`` when there is more than one epoch."""
        self._start()
        if self.verbose and self.epochs > 1:
            self.progbar.stream.write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Move the bar to ``batch + 1`` with the running logs (once per compiled chunk when fused)."""
        self._update(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Complete the bar with the epoch's logs, validation ones included."""
        self._finish(logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Start a bar for ``evaluate``; validation inside ``fit`` gets none."""
        if not self._in_fit:
            self._start()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Move the ``evaluate`` bar on (not during validation inside ``fit``)."""
        if not self._in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        """Complete the ``evaluate`` bar with its results (not during validation inside ``fit``)."""
        if not self._in_fit:
            self._finish(logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Start a bar for ``predict``."""
        self._start()

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Move the ``predict`` bar on, showing no values (the logs hold outputs, not results)."""
        self._update(batch, None)

    def on_predict_end(self, logs: dict | None = None) -> None:
        """Complete the ``predict`` bar."""
        self._finish(None)


class CallbackList(Callback):
    """Runs every hook on a list of callbacks; adds ``History`` / ``ProgbarLogger`` when asked."""

    def __init__(
        self,
        callbacks: list | None = None,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Model | None = None,
        **params: Any,
    ) -> None:
        super().__init__()
        self.callbacks: list[Callback] = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"Callbacks must be dagjax Callback instances, got {type(callback).__name__}."
                )
        self.history = next((c for c in self.callbacks if isinstance(c, History)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    def set_model(self, model: Model) -> None:
        """Bind ``model`` to every callback, and set ``model.history`` to the list's History if any."""
        super().set_model(model)
        if self.history is not None:
            model.history = self.history
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params: dict) -> None:
        """Pass the run's settings on to every callback."""
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def _per_batch_hooks(self, mode: str) -> list[tuple[Callback, str]]:
        """``(callback, hook)`` for each ``mode`` batch hook that must run after every step."""
        return [
            (c, hook)
            for c in self.callbacks
            if not c.chunk_safe
            for hook in _BATCH_HOOKS[mode]
            if _overrides(c, hook)
        ]

    def needs_every_batch(self, mode: str) -> bool:
        """Whether some callback overrides a ``mode`` batch hook and needs it run after every step."""
        return bool(self._per_batch_hooks(mode))

    def per_batch_notice(self, mode: str) -> str:
        """One line saying which callback hooks make ``mode`` run one step per compiled call."""
        hooks = ", ".join(f"{type(c).__name__}.{hook}" for c, hook in self._per_batch_hooks(mode))
        return (
            f"Running one step per compiled call, because {hooks} must see every batch "
            "(set `chunk_safe = True` on a callback whose batch hooks can run once per chunk of steps)."
        )

    def has_batch_hooks(self, mode: str) -> bool:
        """Whether any callback overrides a ``mode`` batch hook (chunk-safe ones, like the progress bar, too).
        """
        return any(_overrides(c, hook) for c in self.callbacks for hook in _BATCH_HOOKS[mode])

    def configure(self, model: Model, **params: Any) -> None:
        """Bind ``model`` and set the run's settings (``verbose``, ``epochs``, ``steps``) as ``params``."""
        self.set_model(model)
        self.set_params({**self.params, **params})

    def _call(self, hook: str, *args: Any, logs: dict | None = None) -> None:
        # As Keras's ``pythonify_logs``: every hook call gets a dict (``{}`` for none), a fresh one shared
        # by the callbacks of this call, so what one adds the next sees, but the caller's dict is untouched.
        logs = {} if logs is None else dict(logs)
        for callback in self.callbacks:
            getattr(callback, hook)(*args, logs=logs)

    def _call_batch(self, hook: str, batch: int, logs: dict | None) -> None:
        python_logs = None
        for callback in self.callbacks:
            if not _overrides(callback, hook) and not (
                hook.startswith("on_train") and _overrides(callback, hook.replace("_train", ""))
            ):
                continue
            if callback.chunk_safe:
                getattr(callback, hook)(batch, logs={} if logs is None else logs)
            else:
                if python_logs is None:
                    python_logs = _to_python(logs) or {}
                getattr(callback, hook)(batch, logs=python_logs)

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Run every callback's ``on_train_begin``, in list order."""
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Run every callback's ``on_train_end``, in list order."""
        self._call("on_train_end", logs=logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Run every callback's ``on_epoch_begin``, in list order."""
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Run every callback's ``on_epoch_end`` on one copy of ``logs``: what one adds, the next sees."""
        self._call("on_epoch_end", epoch, logs=logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Run every callback's ``on_test_begin``, in list order."""
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        """Run every callback's ``on_test_end``, in list order."""
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Run every callback's ``on_predict_begin``, in list order."""
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        """Run every callback's ``on_predict_end``, in list order."""
        self._call("on_predict_end", logs=logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Run the callbacks that override ``on_train_batch_begin`` or its alias ``on_batch_begin``."""
        self._call_batch("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Run the callbacks that override ``on_train_batch_end`` or its alias ``on_batch_end``."""
        self._call_batch("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Run the callbacks that override ``on_test_batch_begin``."""
        self._call_batch("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Run the callbacks that override ``on_test_batch_end``; logs as Python floats unless chunk-safe."""
        self._call_batch("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Run the callbacks that override ``on_predict_batch_begin``."""
        self._call_batch("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Run the callbacks that override ``on_predict_batch_end`` (``logs["outputs"]`` left as arrays)."""
        self._call_batch("on_predict_batch_end", batch, logs)


def callback_list(callbacks: Any, verbose: int | str, add_history: bool = False) -> CallbackList:
    """What ``fit`` / ``evaluate`` / ``predict`` run: the user's callbacks, a History (for ``fit``) and,
    unless ``verbose=0``, a progress bar, as Keras adds them. A ready ``CallbackList`` is used as it is.
    """
    if isinstance(callbacks, CallbackList):
        return callbacks
    return CallbackList(callbacks, add_history=add_history, add_progbar=verbose != 0)
