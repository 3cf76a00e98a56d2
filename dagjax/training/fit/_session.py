"""The Keras façade: ``compile``, ``fit``, ``evaluate``, ``predict`` (and ``*_on_batch``) on ``dagjax.Model``.

A thin layer over the pure core: ``compile`` resolves Keras's arguments,
``fit`` builds a :class:`~dagjax.training.core._trainer.Trainer` for the data's
target shapes (cached), turns the data into device-resident arrays or a
stream of host batches, and drives :class:`~dagjax.training.fit._loop.Loop`.
The trained pytrees land in ``model.params``, ``model.state`` and
``model.opt_state``; fitting again continues from them, and compiling again
keeps the parameters and starts a fresh optimizer, as in Keras.
``train_on_batch`` / ``test_on_batch`` / ``predict_on_batch`` run one step
on exactly the batch given, through the same compiled programs.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from dagjax.callbacks._base import CallbackList, History
from dagjax.training.core import _objective as _spec
from dagjax.training.core._trainer import TrainState, build_trainer, init_optimizer_state
from dagjax.training.fit import _data, _sources
from dagjax.training.fit import _loop as _fit
from dagjax.training.fit._cache import enable_compilation_cache
from dagjax.training.fit._sources import DataSource
from dagjax.training.objectives import _metrics
from dagjax.training.optimizers import _keras as _optimizers

if TYPE_CHECKING:
    from dagjax.model._functional import Model

_copy = lambda tree: jax.device_put(tree, may_alias=False)


class _Link:
    """Hands the train state to the model for callbacks, and takes back what they change.

    The model gets copies, so the step's donated buffers never alias what a
    callback may hold on to.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self.shown: tuple = ()

    def publish(self, ts: TrainState, copy: bool = True) -> None:
        """Set the model's params, state, opt_state and step from ``ts`` (copies, unless ``copy=False``)."""
        trees = (ts.params, ts.state, ts.opt_state, ts.step)
        trees = _copy(trees) if copy else trees
        self.model.params, self.model.state, self.model.opt_state, self.model._train_step = trees
        self.shown = trees[:3]

    def absorb(self, ts: TrainState) -> TrainState:
        """``ts`` with copies of whichever trees a callback replaced on the model since ``publish``."""
        now = (self.model.params, self.model.state, self.model.opt_state)
        if all(a is b for a, b in zip(now, self.shown)):
            return ts
        return ts._replace(params=_copy(now[0]), state=_copy(now[1]), opt_state=_copy(now[2]))


class TrainingMixin:
    """``compile`` / ``fit`` / ``evaluate`` / ``predict`` and the ``*_on_batch`` methods (Keras's API)."""

    optimizer = None
    compiled = False
    stop_training = False
    stop_evaluating = False  # set by a callback: evaluate (or validation) stops after the current batch
    stop_predicting = False  # set by a callback: predict stops after the current batch
    history: History | None = None
    _compile_config: dict | None = None
    _opt_state = None
    _train_step = None
    _loops: dict | None = None
    _checked_layouts: set | None = None  # target and weight layouts already checked against the losses
    _predictor: _fit.Predictor | None = None
    _fit_validation: DataSource | None = None  # the running fit's validation data, for callbacks
    _initial_epoch: int | None = None  # set by a callback's on_train_begin (BackupAndRestore) to resume

    # ------------------------------------------------------------------ compile
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        steps_per_execution: int | str = "auto",
        seed: int = 0,
        *,
        run_eagerly: bool = False,
        jit_compile: bool | str = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Set the optimizer (optax transformation or Keras name), losses and metrics for training.

        Keras's ``run_eagerly``, ``jit_compile`` and ``auto_scale_loss`` are accepted at the values
        that describe what dagjax always does: steps compiled with ``jax.jit``, and no loss scaling
        to turn on or off (dagjax has no float16 policy to scale for).
        """
        _check_execution(run_eagerly, jit_compile, auto_scale_loss)
        names = list(self.output_names)
        resolved = _spec.resolve_losses(loss, loss_weights, names)
        metric_ids = _spec.resolve_metric_ids(metrics, names)
        weighted_ids = _spec.resolve_metric_ids(weighted_metrics, names, "weighted_metrics")
        for identifier in itertools.chain(*metric_ids, *weighted_ids):
            if not (isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc")):
                _metrics.get(identifier)
        _fit.check_steps_per_execution(steps_per_execution)
        self.optimizer = _optimizers.bind(_optimizers.get(optimizer), self)
        self.loss = loss
        self._compile_config = {
            "loss": [identifier for identifier, _ in resolved],
            "loss_weights": [w for _, w in resolved],
            "resolved": resolved,
            "metrics": metric_ids,
            "weighted_metrics": weighted_ids,
            "steps_per_execution": steps_per_execution,
            "seed": int(seed),
        }
        self._opt_state = None
        self._loops = {}
        self._checked_layouts: set = set()
        self.compiled = True
        enable_compilation_cache()

    @property
    def opt_state(self) -> Any:
        """The optimizer state (after ``fit``: the trained one); created on first use after ``compile``."""
        self._require_compiled("read opt_state")
        if self._opt_state is None:
            self._opt_state = init_optimizer_state(self.optimizer, self.params)
        return self._opt_state

    @opt_state.setter
    def opt_state(self, value: Any) -> None:
        self._opt_state = value

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise ValueError(f"You must call compile() before you {what} model '{self.name}'.")

    def _callback_list(
        self, callbacks: Any, verbose: Any, epochs: int, steps: int | None, history: bool = False
    ) -> CallbackList:
        """The user's callbacks (a ready ``CallbackList`` as is), plus a progress bar unless ``verbose=0``."""
        if isinstance(callbacks, CallbackList):
            return callbacks
        return CallbackList(
            callbacks,
            add_history=history,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=steps,
        )

    def _require_loss(self) -> None:
        if all(identifier is None for identifier in self._compile_config["loss"]):
            raise ValueError("No loss to train on: pass `loss` to compile().")

    def _needed_targets(self) -> list[bool]:
        config = self._compile_config
        return [
            identifier is not None or bool(m) or bool(w)
            for identifier, m, w in zip(config["loss"], config["metrics"], config["weighted_metrics"])
        ]

    def _check_layout(self, source: DataSource) -> tuple:
        """The source's layout (targets' and sample weights' shapes past the samples axis), checked once.

        Targets or weights that cannot meet their output's loss fail here, naming it.
        """
        trailing = lambda shapes: tuple(None if s is None else tuple(s[1:]) for s in shapes)
        layout = (trailing(source.target_shapes), trailing(source.weight_shapes))
        if layout not in self._checked_layouts:
            preds = [t.shape for t in self.outputs]
            names, resolved = list(self.output_names), self._compile_config["resolved"]
            targets, weights = list(source.target_shapes), source.weight_shapes
            _spec.check_target_shapes(resolved, names, targets, preds, weights)
            self._checked_layouts.add(layout)
        return layout

    def _loop_for(self, source: DataSource) -> _fit.Loop:
        """The compiled loop for the source's target shapes (a new target layout builds a new trainer)."""
        key = self._check_layout(source)[0]
        if key not in self._loops:
            config = self._compile_config
            names = list(self.output_names)
            preds = [t.shape for t in self.outputs]
            shapes = [p if s is None else s for s, p in zip(source.target_shapes, preds)]
            trainer = build_trainer(
                self,
                dict(zip(names, config["loss"])),
                self.optimizer,
                loss_weights=dict(zip(names, config["loss_weights"])),
                metrics=dict(zip(names, config["metrics"])),
                weighted_metrics=dict(zip(names, config["weighted_metrics"])),
                target_shapes=shapes,
            )
            loop = _fit.Loop(self, trainer, config["steps_per_execution"])
            loop.metric_entries = _spec.build_metrics(
                config["metrics"], config["weighted_metrics"], names, shapes, preds
            )
            logged = _spec.loss_log_names(config["resolved"], names)
            if isinstance(self.loss, dict) and isinstance(self._output_structure, dict):
                # Keras lists a dict-output model's per-output losses in the loss dict's order
                first = [names.index(k) for k in self.loss if k in names and names.index(k) in logged]
                logged = {i: logged[i] for i in dict.fromkeys([*first, *logged])}
            loop.loss_names = list(logged.values())
            self._loops[key] = loop
        return self._loops[key]

    def _train_state(self, for_training: bool) -> TrainState:
        """The model's pytrees as a train state, metrics not yet zeroed (each epoch or batch does that).

        Training steps donate their buffers: trees only the model holds are
        handed over as they are, others copied (see ``_fit.owned_trees``).
        """
        if self._train_step is None:
            self._train_step = jax.device_put(np.zeros((), np.int32))
        if not for_training:
            return TrainState(self.params, self.state, None, self._train_step, {})
        for name in ("params", "opt_state"):  # created here if they do not exist yet
            getattr(self, name)
        return TrainState(*_fit.owned_trees(self, ("_params", "_state", "_opt_state", "_train_step")), {})

    # ------------------------------------------------------------------ fit
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
    ) -> History:
        """Train for ``epochs`` epochs; returns a ``History`` with one value per epoch for each log."""
        self._require_compiled("fit")
        self._require_loss()
        batch_size = _check_batch_size(batch_size)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}.")
        if isinstance(validation_freq, bool) or (isinstance(validation_freq, int) and validation_freq < 1):
            raise ValueError(
                f"validation_freq must be a positive int (validate every that many epochs) or a list of "
                f"epochs (1-based), got {validation_freq!r}."
            )
        needed = self._needed_targets()
        train = _sources.data_source(
            self, x, y, sample_weight, class_weight, batch_size, steps_per_epoch, needed, shuffle
        )
        val = None
        if validation_data is not None:
            val = self._eval_source(
                validation_data, validation_batch_size or batch_size, validation_steps, needed
            )
        elif validation_split:
            val = train.split(validation_split, validation_batch_size or batch_size, validation_steps)
        loop = self._loop_for(train)
        if val is not None:
            _data.check_same_targets(self, train.target_shapes, val.target_shapes, "validation_data")
            self._check_layout(val)
        cbs = self._callback_list(callbacks, verbose, epochs, train.steps_per_epoch, history=True)
        fused = loop.fuse(cbs.needs_every_batch("train"))
        if verbose != 0 and not fused and loop.fuse(False):
            print(cbs.per_batch_notice("train"))
        seed = self._compile_config["seed"]
        link = _Link(self)
        self.stop_training = False
        self._initial_epoch = None
        self._fit_validation = val
        epoch_logs: dict = {}
        cbs.on_train_begin()
        if self._initial_epoch is not None:  # resumed: the data carries on where that epoch left it
            train.skip_epochs(self._initial_epoch - initial_epoch)
            initial_epoch = self._initial_epoch
        ts = self._train_state(for_training=True)
        try:
            for epoch in range(initial_epoch, epochs):
                ts = loop.reset_metrics(ts)
                ts = self._callback_hook(cbs, link, ts, "on_epoch_begin", epoch)
                step = int(ts.step)
                take = train.epoch(loop.capacity if fused else 1, seed, step)
                ahead = None if epoch + 1 == epochs else partial(_prepare_epoch, loop, train, seed, step)
                try:
                    ts, steps, epoch_logs = loop.train_epoch(ts, take, fused, seed, cbs, link, ahead)
                except BaseException:
                    ts, loop.latest = loop.latest, None  # the state the epoch started from was donated
                    raise
                train.end_epoch()
                if steps == 0:
                    _fit.warn_out_of_data()
                    break
                if val is not None and _should_validate(epoch, validation_freq):
                    val_logs = self._run_evaluate(loop, ts, val, cbs)
                    epoch_logs = loop.ordered({**epoch_logs, **{f"val_{k}": v for k, v in val_logs.items()}})
                ts = self._callback_hook(cbs, link, ts, "on_epoch_end", epoch, epoch_logs)
                if self.stop_training:
                    break
        finally:
            link.publish(ts, copy=False)
            self._fit_validation = None
        cbs.on_train_end(epoch_logs)
        return cbs.history

    @staticmethod
    def _callback_hook(cbs: CallbackList, link: _Link, ts: TrainState, hook: str, *args) -> TrainState:
        """Run an epoch hook; callbacks that read the weights see the current ones and may change them."""
        if not cbs.reads_model_in(hook):
            getattr(cbs, hook)(*args)
            return ts
        link.publish(ts)
        getattr(cbs, hook)(*args)
        return link.absorb(ts)

    # ------------------------------------------------------------------ evaluate / predict
    def _eval_source(self, data: Any, batch_size: int, steps: int | None, needed: list[bool]) -> DataSource:
        """``fit``'s validation data; a one-shot generator is kept as read, to validate on every epoch."""
        if _data.is_stream(data):
            if isinstance(data, Iterator):
                data = _sources.Replayed(data)
            return _sources.data_source(self, data, None, None, None, batch_size, steps, needed, False)
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError("validation_data must be (x, y), (x, y, sample_weight) or a data generator.")
        x, y, sample_weight = (*data, None)[:3]
        return _sources.data_source(self, x, y, sample_weight, None, batch_size, steps, needed, False)

    def _run_evaluate(self, loop: _fit.Loop, ts: TrainState, source: DataSource, cbs: CallbackList) -> dict:
        fused = loop.fuse(cbs.needs_every_batch("test"))
        self.stop_evaluating = False
        cbs.on_test_begin()
        source.restart()  # each validation sees the same batches (with validation_steps, the first ones)
        logs = loop.evaluate(ts, source.epoch(loop.capacity if fused else 1, 0), fused, cbs)
        source.end_epoch()
        cbs.on_test_end(logs)
        return logs

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
        self._require_compiled("evaluate")
        batch_size = _check_batch_size(batch_size)
        needed = self._needed_targets()
        source = _sources.data_source(self, x, y, sample_weight, None, batch_size, steps, needed, False)
        loop = self._loop_for(source)
        cbs = self._callback_list(callbacks, verbose, 1, source.steps_per_epoch)
        logs = self._run_evaluate(loop, self._train_state(for_training=False), source, cbs)
        return _keras_result(loop, logs, return_dict)

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        steps: int | None = None,
        callbacks: list | None = None,
    ) -> Any:
        """Outputs for ``x`` as numpy arrays, in the model's output structure."""
        batch_size = _check_batch_size(batch_size)
        if _data.is_stream(x):
            items = itertools.islice(_sources.stream_pass(x), steps)
            batches = (_data.model_inputs(self, _data.unpack_stream_item(item)[0]) for item in items)
            total = steps if steps is not None else (len(x) if hasattr(x, "__len__") else None)
        else:
            inputs = _data.model_inputs(self, x)
            size = inputs[0].shape[0]
            if size == 0:
                raise ValueError("The data set given to predict is empty: x has 0 samples.")
            total = _sources.pass_rows(size, batch_size)
            if steps is not None and steps > total:
                _sources.warn_short_epoch(steps, total)
            total = total if steps is None else min(steps, total)
            batches = ([v[i * batch_size : (i + 1) * batch_size] for v in inputs] for i in range(total))
        cbs = self._callback_list(callbacks, verbose, 1, total)
        if self._predictor is None:
            self._predictor = _fit.Predictor(self)
        self.stop_predicting = False
        cbs.on_predict_begin()
        outputs = self._predictor(self.params, self.state, batches, batch_size, cbs)
        cbs.on_predict_end()
        return outputs

    # ------------------------------------------------------------------ one batch
    def _one_batch(self, x: Any, y: Any, sample_weight: Any, class_weight: dict | None):
        """The loop for these targets, and the batch as a one-step epoch (unpadded, unshuffled)."""
        if _data.is_stream(x):
            raise ValueError("The *_on_batch methods take one batch of arrays, not a data generator.")
        needed = self._needed_targets()
        arrays = _data.array_data(self, x, y, sample_weight, class_weight, needed)
        source = _sources.ArraySource(self, arrays, arrays.size, None, False)
        return self._loop_for(source), source.epoch(1, 0)

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: dict | None = None,
        return_dict: bool = False,
    ) -> float | list | dict:
        """One optimizer step on this batch; its loss and metrics as ``evaluate`` gives them.

        As in Keras, the metrics start afresh each call: the logs are this batch's alone.
        """
        self._require_compiled("use train_on_batch on")
        self._require_loss()
        loop, take = self._one_batch(x, y, sample_weight, class_weight)
        link = _Link(self)
        ts = loop.reset_metrics(self._train_state(for_training=True))
        seed = self._compile_config["seed"]
        try:
            ts, _, logs = loop.train_epoch(ts, take, False, seed, CallbackList(), link)
        except BaseException:
            ts, loop.latest = loop.latest, None  # the state it started from was donated
            raise
        finally:
            link.publish(ts, copy=False)
        return _keras_result(loop, logs, return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> float | list | dict:
        """Loss and metrics of this batch in inference mode: a scalar, a list in Keras's order, or a dict."""
        self._require_compiled("use test_on_batch on")
        loop, take = self._one_batch(x, y, sample_weight, None)
        logs = loop.evaluate(self._train_state(for_training=False), take, False, CallbackList())
        return _keras_result(loop, logs, return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """Outputs for this batch as numpy arrays, in the model's output structure."""
        inputs = _data.model_inputs(self, x)
        if self._predictor is None:
            self._predictor = _fit.Predictor(self)
        return self._predictor(self.params, self.state, iter([inputs]), inputs[0].shape[0], CallbackList())


def _check_execution(run_eagerly: bool, jit_compile: bool | str, auto_scale_loss: bool) -> None:
    """Refuse Keras's uncompiled modes, which dagjax does not have, in words that say what to do instead."""
    if run_eagerly or jit_compile is False:
        given = "run_eagerly=True" if run_eagerly else "jit_compile=False"
        raise NotImplementedError(
            f"compile({given}): dagjax always compiles its steps with jax.jit. To step through the "
            "model's Python code (print, a debugger), run the call under `with jax.disable_jit():`, "
            "or use jax.debug.print inside a layer."
        )
    if jit_compile not in (True, "auto"):
        raise ValueError(f"compile(jit_compile={jit_compile!r}): expected True, False or 'auto'.")
    if not isinstance(auto_scale_loss, bool):
        raise TypeError(f"compile(auto_scale_loss={auto_scale_loss!r}): expected True or False.")


def _keras_result(loop: _fit.Loop, logs: dict, return_dict: bool) -> float | list | dict:
    """Logs as Keras returns them: the dict, or a list in ``metrics_names`` order (a scalar if one)."""
    if return_dict:
        return logs
    values = _spec.evaluate_order(logs, loop.metric_entries, loop.loss_names)
    return values[0] if len(values) == 1 else values


def _prepare_epoch(loop: _fit.Loop, train: DataSource, seed: int, step: int, steps: int) -> None:
    """The next epoch's host work (its shuffle, zeroed metrics), done while the device runs this one."""
    train.prepare(seed, step + steps)
    loop.prepare_reset()


def _check_batch_size(batch_size: int | None) -> int:
    """32 for None; any integer type (numpy's too) above 0."""
    if batch_size is None:
        return 32
    if not isinstance(batch_size, bool) and isinstance(batch_size, numbers.Integral) and batch_size > 0:
        return int(batch_size)
    raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")


def _should_validate(epoch: int, validation_freq: int | list) -> bool:
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return epoch + 1 in validation_freq
