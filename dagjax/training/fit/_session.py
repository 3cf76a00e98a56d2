"""``FitSession``: one ``compile``'s training, and the hand-off of the weights between it and the model.

``model.compile`` makes a session. It owns what training carries from call
to call: the optimizer and its state, the step counter, the compiled loops
(one per target layout), the stop flags callbacks set (``model.stop_training``
and ``model.stop_evaluating`` read and write them), the validation data of a
running ``fit``, and where a resumed run starts. The model owns the graph and its weights.

The weights change hands explicitly, as Keras's JAX trainer does it: at the
start of ``fit`` the session takes the model's params and state (copying
them only if someone outside the model may hold them, since the steps donate
their buffers); before a callback hook it gives the model the current ones,
and takes them back after (copied only if the hook read or replaced them); at
the end it gives them back for good. So reading ``self.model.params`` in a
callback costs no copy that outlives the step after it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from dagjax._naming import default_seed
from dagjax.layers._keras_style import may_add_losses
from dagjax.metrics import Mean, Metric
from dagjax.model._facade import has_keras_step, has_own_train_step, has_pure_train_step
from dagjax.training.core import (
    CompileMetrics,
    Objective,
    Trainer,
    TrainState,
    compile_config,
    compute_loss,
    count_output_losses,
    hand_to_metrics,
    make_trainer,
    resolve_objective,
    trainable_only,
    with_custom_step,
    with_keras_steps,
)
from dagjax.training.fit import _perf
from dagjax.training.fit._arguments import check_batch_size, check_execution, check_fit_arguments
from dagjax.training.fit._batching import Chunk, DataSource
from dagjax.training.fit._data import array_data, check_same_targets, is_stream, leaves, take
from dagjax.training.fit._distributed import current_distribution, place_train_state
from dagjax.training.fit._loop import Loop, check_steps_per_execution, warn_out_of_data
from dagjax.training.fit._sources import ArraySource, data_source, eval_source
from dagjax.training.optimizers import bind, get, get_learning_rate, set_learning_rate, with_loss_scaling

if TYPE_CHECKING:
    from dagjax.model import Model


class FitSession:
    """The training state of one ``compile``: optimizer state, step, compiled loops (see the module)."""

    def __init__(
        self,
        model: Model,
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
        check_execution(run_eagerly, jit_compile, auto_scale_loss)
        seed = default_seed() if seed is None else int(seed)
        check_steps_per_execution(steps_per_execution)
        self.objective: Objective = resolve_objective(
            model.output_names, loss, loss_weights, metrics, weighted_metrics, isinstance(model.output, dict),
            model.output,
        )
        self.compile_arguments = {
            "optimizer": get(optimizer), "loss": loss, "loss_weights": loss_weights, "metrics": metrics,
            "weighted_metrics": weighted_metrics, "steps_per_execution": steps_per_execution, "seed": seed,
            "auto_scale_loss": auto_scale_loss,
        }
        optimizer = self.compile_arguments["optimizer"]
        if auto_scale_loss:  # as Keras: a float16 model's optimizer scales the loss
            optimizer = with_loss_scaling(optimizer, model)
        self.optimizer = bind(trainable_only(optimizer, model), self)
        self._model = weakref.ref(model)  # the model holds its session: no reference cycle
        self._opt_state: Any = None  # made on first use
        self._opt_shared = False  # whether ``opt_state`` was handed out since the session made it
        self._step: jax.Array | None = None
        self._loops: dict[tuple, Loop] = {}
        self._checked_layouts: set = set()
        self.validation: DataSource | None = None  # a running fit's validation data
        self.stop_training = False  # set by a callback (``model.stop_training``): end fit after this batch
        self.stop_evaluating = False  # likewise for evaluate (and a validation)
        self._resume_epoch: int | None = None
        self.loss_tracker = Mean(name="loss")  # Keras's ``model.metrics[0]``, for Keras-form steps
        # Keras's ``compile_loss.metrics``: an ``<output>_loss`` tracker per trained output, when several are
        self.output_loss_trackers = {i: Mean(name=n) for i, n in self.objective.loss_log_names().items()}
        self._compile_metrics: dict[tuple, CompileMetrics] = {}  # one per trainer's metric entries
        self._default_trainer: Trainer | None = None  # for targets shaped like the outputs, made on first use
        _perf.compilation_cache_from_env()

    # ------------------------------------------------------------------ what callbacks and files read
    @property
    def loss(self) -> Any:
        """The ``loss`` argument ``compile`` was given."""
        return self.compile_arguments["loss"]

    @property
    def steps_per_execution(self) -> int | str:
        """``compile``'s ``steps_per_execution``."""
        return self.compile_arguments["steps_per_execution"]

    @property
    def seed(self) -> int:
        """The seed of Dropout's draws and the shuffles (``compile``'s, or the default seed then)."""
        return self.compile_arguments["seed"]

    @property
    def model(self) -> Model:
        """The model this session trains."""
        return self._model()

    @property
    def opt_state(self) -> Any:
        """The optimizer state (after ``fit``: the trained one); made on first use."""
        self._opt_shared = True
        return self._current_opt_state()

    @opt_state.setter
    def opt_state(self, value: Any) -> None:
        self._opt_state, self._opt_shared = value, True

    def _current_opt_state(self) -> Any:
        if self._opt_state is None:
            self._opt_state = _perf.init_optimizer_state(self.optimizer, self.model.weights_view()[0])
        return self._opt_state

    def compile_config(self) -> dict:
        """``compile``'s arguments as JSON data for a model file (raises what cannot be)."""
        return compile_config(self.compile_arguments)

    def opt_state_view(self) -> Any:
        """The optimizer state for code that reads it now and keeps nothing (saving): no copy follows."""
        return self._current_opt_state()

    def restore_optimizer(self, opt_state: Any, step: int) -> None:
        """Continue from this optimizer state and step count (a checkpoint's)."""
        self._opt_state, self._opt_shared = opt_state, False
        self.iterations = step

    @property
    def has_trained(self) -> bool:
        """Whether the optimizer state exists (training ran, or it was read or loaded)."""
        return self._opt_state is not None

    @property
    def iterations(self) -> jax.Array:
        """Steps trained so far (0 before any training), a fresh array: Keras's ``optimizer.iterations``."""
        return jax.numpy.array(0 if self._step is None else self._step, jax.numpy.int32)

    @iterations.setter
    def iterations(self, value: int) -> None:
        self._step = jax.device_put(np.asarray(value, np.int32))

    def get_learning_rate(self) -> jax.Array | None:
        """The learning rate the next step uses (a fresh scalar), or None if the optimizer injects none."""
        rate = get_learning_rate(self._current_opt_state())
        return None if rate is None else jax.numpy.array(rate)

    def set_learning_rate(self, value: float) -> None:
        """Set the learning rate the next step uses; nothing recompiles."""
        self._opt_state = set_learning_rate(self._current_opt_state(), value)

    @property
    def loops(self) -> list[Loop]:
        """The compiled loops made so far, one per target layout (shapes of targets and sample weights)."""
        return list(self._loops.values())

    def metrics(self) -> list[tuple[str, Any]]:
        """``(log name, Metric)`` of every metric the compiled loops have built so far."""
        return [(name, metric) for loop in self.loops for name, metric, _, _ in loop.metric_entries]

    def validation_batch(self) -> tuple | None:
        """The running fit's first validation batch ``(x, y, sample_weight, mask)``; None without arrays."""
        source = self.validation
        if not isinstance(source, ArraySource):
            return None
        size = min(source.batch_size, source.arrays.size)
        return (*leaves(take(source.arrays, slice(0, size), size)), np.ones((size,), np.float32))

    def resume_at(self, epoch: int) -> None:
        """From ``on_train_begin``: start the running fit at ``epoch`` (``BackupAndRestore`` resuming)."""
        self._resume_epoch = epoch

    # ------------------------------------------------------------------ the hand-off
    def _take(self) -> TrainState:
        """The model's weights and the optimizer's state as a train state the steps may donate.

        The trees are passed on without keeping a reference here, so copying a
        shared one can free each original leaf as it goes (``_perf.owned``).
        """
        lent = [self._current_opt_state()]
        self._opt_state = None
        (self._opt_state,) = _perf.owned(lent, self._opt_shared)
        self._opt_shared = False
        lent = [*self.model.lend_weights()]
        shared = lent.pop()
        params, state = _perf.owned(lent, shared)
        return place_train_state(TrainState(params, state, self._opt_state, self._current_step(), {}))

    def _first_step(self, loop: Loop, source: DataSource) -> tuple[TrainState, Chunk, int] | None:
        """What ``loop``'s first train step on ``source`` gets, for the fusing probe to time the steps on:
        a copy of the train state (``_take``'s, made as it makes it: the probe's steps donate it, the
        real one is left alone), the data's first chunk and the seed; None where the data has no chunk
        to give ahead (``DataSource.unshuffled_pass``).
        """
        chunk = source.unshuffled_pass()
        if chunk is None:
            return None
        params, state = self.model.weights_view()
        trees = [params, state, self._current_opt_state(), self._current_step()]
        params, state, opt_state, step = _perf.owned(trees, shared=True)
        ts = place_train_state(TrainState(params, state, opt_state, step, {}))
        return loop.trainer.reset_metrics(ts), chunk, self.seed

    def _current_step(self) -> jax.Array:
        """The step counter, made (0) on first use."""
        if self._step is None:
            self._step = jax.device_put(np.zeros((), np.int32))
        return self._step

    def _give(self, ts: TrainState) -> None:
        """Give the model ``ts``'s weights, and keep its optimizer state and step, as the current ones."""
        self.model.restore_weights(ts.params, ts.state)
        self._opt_state, self._opt_shared, self._step = ts.opt_state, False, ts.step

    def _end_training(self, ts: TrainState | None, start: tuple | None) -> None:
        """Give the model the newest train state that can still be read, else the copy ``fit`` began with.

        With neither (a step failed on the device and no copy was kept) the
        model stays without weights, and reading them says why.
        """
        ts = _perf.usable(ts, start)
        if ts is not None:
            self._give(ts)

    def around_hook(self, ts: TrainState, hook: Callable[[], None]) -> TrainState:
        """Run ``hook`` (callbacks) with the model holding ``ts``'s weights; the train state after it.

        What the hook read or replaced (weights, optimizer state) is copied before the next step donates it.
        """
        self._give(ts)
        try:
            hook()
        finally:
            ts = self._take()._replace(metrics=ts.metrics)
        return ts

    # ------------------------------------------------------------------ compiled loops
    def _check_layout(self, source: DataSource) -> tuple:
        """The source's layout (targets' and sample weights' shapes past the samples axis), checked once.

        Targets or weights that cannot meet their output's loss fail here, naming it.
        """
        trailing = lambda shapes: tuple(None if s is None else tuple(s[1:]) for s in shapes)
        layout = (trailing(source.target_shapes), trailing(source.weight_shapes))
        if layout not in self._checked_layouts:
            preds = [t.shape for t in self.model.outputs]
            self.objective.check_targets(list(source.target_shapes), preds, source.weight_shapes)
            self._checked_layouts.add(layout)
        return layout

    def trainer_for(self, target_shapes: list, objective: Objective | None = None) -> Trainer:
        """A trainer for targets of these shapes (None: like the output), for this session's objective."""
        preds = [t.shape for t in self.model.outputs]
        shapes = [p if s is None else s for s, p in zip(target_shapes, preds)]
        model, klass = self.model, type(self.model)
        trainer = make_trainer(model, objective or self.objective, self.optimizer, shapes)
        if has_pure_train_step(klass):
            trainer = with_custom_step(trainer, model, model.train_step, shapes)
        keras_train, keras_test = has_keras_step(klass, "train_step"), has_keras_step(klass, "test_step")
        if keras_train or keras_test:
            steps = (model.train_step if keras_train else None, model.test_step if keras_test else None)
            trainer = with_keras_steps(trainer, model, *steps, shapes)
        return trainer

    # ------------------------------------------------------------------ Keras's step helpers, on the model
    def _step_trainer(self) -> Trainer:
        """The trainer of the step being traced, else of the first compiled loop, else for targets shaped
        like the outputs."""
        if self.model.step_trainer is not None:
            return self.model.step_trainer
        if self._loops:
            return next(iter(self._loops.values())).trainer
        if self._default_trainer is None:
            self._default_trainer = self.trainer_for([None] * len(self.model.output_names))
        return self._default_trainer

    def keras_metrics(self) -> list:
        """``model.metrics`` as Keras lists them: the loss tracker, ``compile_metrics`` (when compile was
        given metrics), the ``<output>_loss`` trackers, then the metrics set as the model's attributes."""
        found: list = [self.loss_tracker]
        arguments = self.compile_arguments
        if arguments["metrics"] is not None or arguments["weighted_metrics"] is not None:
            entries = self._step_trainer().metric_entries
            if entries not in self._compile_metrics:
                model = self.model
                self._compile_metrics[entries] = CompileMetrics(entries, model.output_names, model.output)
            found.append(self._compile_metrics[entries])
        found += self.output_loss_trackers.values()
        return found + [value for value in vars(self.model).values() if isinstance(value, Metric)]

    def compute_loss(self, y: Any, y_pred: Any, sample_weight: Any, trainable: list | None = None) -> Any:
        """Keras's ``model.compute_loss`` (``stateless_compute_loss`` with ``trainable``), see ``core``."""
        return compute_loss(self.model, self._step_trainer(), y, y_pred, sample_weight, trainable)

    def count_output_losses(self, y: Any, y_pred: Any, sample_weight: Any, metrics_variables: list) -> list:
        """``metrics_variables`` with each output's loss counted in its ``<output>_loss`` tracker."""
        trainer, trackers = self._step_trainer(), self.output_loss_trackers
        return count_output_losses(self.model, trainer, trackers, y, y_pred, sample_weight, metrics_variables)

    def _loop_for(self, source: DataSource) -> Loop:
        """The compiled loop for the source's target shapes (a new target layout builds a new trainer)
        on the current distribution (a new one builds new programs)."""
        dist = current_distribution()
        key = (self._check_layout(source)[0], dist)
        if key not in self._loops:
            trainer = self.trainer_for(source.target_shapes)
            self._loops[key] = Loop(self.model, trainer, self.steps_per_execution, dist)
        return self._loops[key]

    def _require_loss(self) -> None:
        model = self.model
        own_loss = may_add_losses(model) or model._loss_tensors or has_own_train_step(type(model))
        if not self.objective.trains and not own_loss:  # add_loss or the model's own train_step may give one
            raise ValueError("No loss to train on: pass `loss` to compile().")

    # ------------------------------------------------------------------ fit / evaluate
    def fit(
        self,
        x: Any,
        y: Any,
        batch_size: int | None,
        epochs: int,
        verbose: int | str,
        callbacks: Any,
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
        """Keras's ``fit``; ``callbacks`` is a ready ``CallbackList`` (with a History, which it returns)."""
        self._require_loss()
        batch_size = check_batch_size(batch_size)
        check_fit_arguments(validation_split, validation_freq)
        model, needed = self.model, self.objective.needed_targets()
        train = data_source(
            model, x, y, sample_weight, class_weight, batch_size, steps_per_epoch, needed, shuffle
        )
        val = None
        if validation_data is not None:
            val_batch = validation_batch_size or batch_size
            val = eval_source(model, validation_data, val_batch, validation_steps, needed)
        elif validation_split:
            val = train.split(validation_split, validation_batch_size or batch_size, validation_steps)
        loop = self._loop_for(train)
        if val is not None:
            check_same_targets(model, train.target_shapes, val.target_shapes, "validation_data")
            self._check_layout(val)
        callbacks.configure(model, verbose=verbose, epochs=epochs, steps=train.steps_per_epoch)
        probe = lambda: self._first_step(loop, train)
        fused = loop.fuse(callbacks.needs_every_batch("train"), train.sample_shapes, train.batch_size, probe)
        if verbose != 0 and not fused and loop.fuse(False, train.sample_shapes, train.batch_size, probe):
            print(callbacks.per_batch_notice("train"))
        self.stop_training = False
        self._resume_epoch, self.validation = None, val
        epoch_logs: dict = {}
        callbacks.on_train_begin()
        if self._resume_epoch is not None:  # resumed: the data carries on where that epoch left it
            train.skip_epochs(self._resume_epoch - initial_epoch)
            initial_epoch = self._resume_epoch
        ts = self._take()
        start = _perf.StartCopy()
        try:
            for epoch in range(initial_epoch, epochs):
                ts, loop.evaluated = loop.reset_metrics(ts), None
                ts = self.around_hook(ts, lambda epoch=epoch: callbacks.on_epoch_begin(epoch))
                step = int(ts.step)
                take_batches = train.epoch(loop.capacity if fused else 1, self.seed, step)
                ahead = None if epoch + 1 == epochs else _next_epoch(loop, train, self.seed, step)
                try:
                    ts, steps, epoch_logs = loop.train_epoch(
                        ts, take_batches, fused, self.seed, callbacks, self, ahead, start.before_first_step
                    )
                except BaseException:
                    ts, loop.latest = loop.latest, None  # the state the epoch started from was donated
                    raise
                train.end_epoch()
                if steps == 0:
                    warn_out_of_data()
                    break
                if val is not None and _should_validate(epoch, validation_freq):
                    ts, epoch_logs = self._validate(loop, ts, val, callbacks, epoch_logs)
                end = lambda epoch=epoch, logs=epoch_logs: callbacks.on_epoch_end(epoch, logs)
                ts = self.around_hook(ts, end)
                if self.stop_training:
                    break
        finally:
            self._end_training(ts, start.copy)
            self.validation = None
        self._hand_to_metrics(loop, ts.metrics)
        callbacks.on_train_end(epoch_logs)
        return callbacks.history

    def _validate(
        self, loop: Loop, ts: TrainState, source: DataSource, callbacks: Any, epoch_logs: dict
    ) -> tuple[TrainState, dict]:
        """Evaluate on the validation data (the model holding the weights, for the test hooks); the epoch's
        logs with the ``val_`` ones added."""
        val_logs: dict = {}
        ts = self.around_hook(ts, lambda: val_logs.update(self._run_evaluate(loop, ts, source, callbacks)))
        return ts, loop.ordered({**epoch_logs, **{f"val_{k}": v for k, v in val_logs.items()}})

    def _run_evaluate(self, loop: Loop, ts: TrainState, source: DataSource, callbacks: Any) -> dict:
        fused = loop.fuse(callbacks.needs_every_batch("test"), source.sample_shapes, source.batch_size)
        self.stop_evaluating = False
        callbacks.on_test_begin()
        source.restart()  # each validation sees the same batches (with validation_steps, the first ones)
        logs = loop.evaluate(ts, source.epoch(loop.capacity if fused else 1, 0), fused, callbacks)
        source.end_epoch()
        callbacks.on_test_end(logs)
        return logs

    def _inference_state(self) -> TrainState:
        """The model's weights as a train state for evaluation (nothing is donated, so nothing is copied)."""
        params, state = self.model.weights_view()
        return place_train_state(TrainState(params, state, None, self._current_step(), {}))

    def evaluate(
        self, x: Any, y: Any, batch_size: int | None, verbose: int | str, sample_weight: Any,
        steps: int | None, callbacks: Any, return_dict: bool,
    ) -> float | list | dict:
        """Keras's ``evaluate``; ``callbacks`` is a ready ``CallbackList``."""
        batch_size = check_batch_size(batch_size)
        needed = self.objective.needed_targets()
        source = data_source(self.model, x, y, sample_weight, None, batch_size, steps, needed, False)
        loop = self._loop_for(source)
        callbacks.configure(self.model, verbose=verbose, epochs=1, steps=source.steps_per_epoch)
        logs = self._run_evaluate(loop, self._inference_state(), source, callbacks)
        self._hand_to_metrics(loop, None)
        return self._keras_result(loop, logs, return_dict)

    def _hand_to_metrics(self, loop: Loop, trained: dict | None) -> None:
        """Give ``model.metrics`` the state the last Keras-form step left, as Keras syncs its metrics: the
        last evaluation's (a validation in fit's last epoch), else ``trained`` (fit's last epoch)."""
        klass = type(self.model)
        if loop.evaluated is not None and has_keras_step(klass, "test_step"):
            hand_to_metrics(self.model, loop.trainer, loop.evaluated)
        elif trained is not None and has_keras_step(klass, "train_step"):
            hand_to_metrics(self.model, loop.trainer, trained)

    # ------------------------------------------------------------------ one batch
    def _one_batch(self, x: Any, y: Any, sample_weight: Any, class_weight: dict | None):
        """The loop for these targets, and the batch as a one-step epoch (unpadded, unshuffled)."""
        if is_stream(x):
            raise ValueError("The *_on_batch methods take one batch of arrays, not a data generator.")
        arrays = array_data(self.model, x, y, sample_weight, class_weight, self.objective.needed_targets())
        source = ArraySource(self.model, arrays, arrays.size, None, False)
        return self._loop_for(source), source.epoch(1, 0)

    def train_on_batch(
        self, x: Any, y: Any, sample_weight: Any, class_weight: dict | None, return_dict: bool
    ) -> float | list | dict:
        """One optimizer step on this batch; its loss and metrics (the metrics start afresh, as in Keras)."""
        self._require_loss()
        loop, take_batch = self._one_batch(x, y, sample_weight, class_weight)
        ts = loop.reset_metrics(self._take())
        try:
            ts, _, logs = loop.train_epoch(ts, take_batch, False, self.seed, None, self)
        except BaseException:
            ts, loop.latest = loop.latest, None  # the state it started from was donated
            raise
        finally:
            self._end_training(ts, None)  # no start copy: one per step would cost a copy of every step
        return self._keras_result(loop, logs, return_dict)

    def test_on_batch(self, x: Any, y: Any, sample_weight: Any, return_dict: bool) -> float | list | dict:
        """Loss and metrics of this batch in inference mode: a scalar, a list in Keras's order, or a dict."""
        loop, take_batch = self._one_batch(x, y, sample_weight, None)
        logs = loop.evaluate(self._inference_state(), take_batch, False, None)
        return self._keras_result(loop, logs, return_dict)

    def _keras_result(self, loop: Loop, logs: dict, return_dict: bool) -> float | list | dict:
        """Logs as Keras returns them: the dict, or a list in ``metrics_names`` order (a scalar if one)."""
        if return_dict:
            return logs
        values = self.objective.evaluate_order(logs, loop.metric_entries)
        return values[0] if len(values) == 1 else values


def _next_epoch(loop: Loop, train: DataSource, seed: int, step: int) -> Callable[[int], None]:
    """The next epoch's host work (its shuffle, zeroed metrics), to run while the device runs this one."""

    def prepare(steps: int) -> None:
        train.prepare(seed, step + steps)
        loop.prepare_reset()

    return prepare


def _should_validate(epoch: int, validation_freq: int | list) -> bool:
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return epoch + 1 in validation_freq
