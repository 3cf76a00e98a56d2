"""``DeepEnsemble``: K copies of one architecture from K seeds, trained as one population program.

Member ``i`` starts from ``model.init(jax.random.key(seed + i))``; ``fit``
trains all members at once with :func:`dagjax.population.fit_population`
(one vmapped, compiled program). By default every member sees the same
batches, shuffled with ``seed``; ``fit(shuffle="per_member")`` shuffles
member ``i``'s data with ``seed + i`` instead. The seed that draws the
shuffles also draws Dropout's masks, so member ``i`` ends exactly as
``model.fit`` after ``compile(seed=seed)`` (or ``seed + i``) from its
initial weights. ``predict`` gives the members' mean (and their standard
deviation); ``evaluate`` and ``save`` use their average,
``dj.ensemble.average(ensemble.members)``, an ordinary model.

``fit`` takes callbacks that work at epoch ends (an epoch is one compiled
call): they get the members' mean logs, and see the ensemble as their
``model``: ``stop_training``, ``params``/``state`` (the members' trees
stacked, on the host) and ``save``. So ``EarlyStopping`` (with
``restore_best_weights``), ``TerminateOnNaN``, ``ModelCheckpoint`` (whole
files), ``CSVLogger``, ``LambdaCallback`` and epoch hooks of your own work;
batch hooks and the callbacks that need one model's training session
(learning-rate changes, TensorBoard, backups) are refused at ``fit``.

>>> ensemble = dj.ensemble.DeepEnsemble(model, n_members=5)
>>> ensemble.compile("adam", "mse")
>>> history = ensemble.fit(x, y, epochs=10)
>>> mean, std = ensemble.predict(x_test, return_std=True)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax.callbacks import (
    BackupAndRestore,
    CallbackList,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TensorBoard,
)
from dagjax.ensemble._average import average
from dagjax.io._arrays import host_value
from dagjax.model import Model, clone_model
from dagjax.training.fit import log_value
from dagjax.training.population import Population, PopulationState, fit_population, stack, unstack

_SHUFFLES = (True, False, "per_member")


class EnsembleHistory:
    """What ``DeepEnsemble.fit`` returns: Keras's ``History`` fields, averaged over the members.

    ``history[name]``: the members' mean of each log per epoch, under Keras's
    names (``loss``, ``val_loss``, ...); ``members[i]``: member ``i``'s own
    ``{name: [one value per epoch]}``.
    """

    def __init__(self, members: list[dict]) -> None:
        self.members = members
        names = members[0] if members else {}
        self.history = {
            name: [log_value(v) for v in np.mean([m[name] for m in members], axis=0)] for name in names
        }
        self.epoch = list(range(len(next(iter(self.history.values()), []))))


class DeepEnsemble:
    """``n_members`` copies of ``model``'s architecture with their own initial weights (see the module).

    ``members``: the K member Models (``clone_model(model)``, named
    ``member_0``...), each holding its own params and state.
    """

    def __init__(self, model: Model, n_members: int, seed: int = 0, name: str = "deep_ensemble") -> None:
        if not isinstance(model, Model):
            raise TypeError(f"DeepEnsemble takes a dagjax Model, got {type(model).__name__}.")
        if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 1:
            raise ValueError(f"DeepEnsemble needs n_members >= 1 (an int), got {n_members!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"DeepEnsemble's seed must be a non-negative int, got {seed!r}.")
        self.model, self.n_members, self.seed, self.name = model, n_members, seed, name
        self.members = [_member(model, i, model.init(jax.random.key(seed + i))) for i in range(n_members)]
        self._compiled: dict | None = None
        self._population: Population | None = None
        self._state: PopulationState | None = None
        self.stop_training = False

    # ------------------------------------------------------------------ training
    def compile(
        self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None, loss_weights: Any = None,
        *, auto_scale_loss: bool = True,
    ) -> None:
        """Set every member's optimizer, loss and metrics; the optimizer state starts afresh, as in Keras.

        ``auto_scale_loss`` as ``Model.compile``'s: float16 members train with a ``LossScaleOptimizer``.
        """
        self._compiled = dict(
            optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights,
            auto_scale_loss=auto_scale_loss,
        )
        self._population = Population(
            self.model, loss, optimizer, size=self.n_members, seed=self.seed,
            loss_weights=loss_weights, metrics=metrics, auto_scale_loss=auto_scale_loss,
        )
        self._state = None

    def fit(
        self,
        x: Any,
        y: Any,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: list | None = None,
        validation_split: float = 0.0,
        validation_data: tuple | None = None,
        shuffle: bool | str = True,
        sample_weight: Any = None,
    ) -> EnsembleHistory:
        """Train every member for ``epochs`` on ``(x, y)`` as one program; continues from the last ``fit``.

        Arguments as ``Model.fit``'s; ``shuffle``: ``True`` (every member sees
        the same shuffled batches), ``False`` (in order) or ``"per_member"``
        (each its own shuffle). ``callbacks``: see the module.
        """
        population = self._population_for("fit")
        if shuffle not in _SHUFFLES:
            raise ValueError(f"shuffle must be True, False or 'per_member', got {shuffle!r}.")
        hooks = _epoch_callbacks(callbacks, self, verbose=verbose, epochs=epochs)
        ps = self._start_state(population)
        offsets = np.arange(self.n_members) if shuffle == "per_member" else np.zeros(self.n_members, int)
        ps = ps._replace(seed=jnp.asarray(self.seed + offsets, jnp.int32))
        printer = None if verbose == 0 else _printer(epochs)
        self.stop_training = False

        def after_epoch(epoch: int, logs: list, state: PopulationState) -> list[bool] | None:
            if printer is not None:
                printer(epoch, logs)
            if not hooks.callbacks:
                return None
            self._keep(_on_host(state))
            hooks.on_epoch_end(epoch, logs=_mean_logs(logs))
            if self.stop_training:
                return [False] * self.n_members
            if epoch + 1 < epochs:
                hooks.on_epoch_begin(epoch + 1)
            return None

        hooks.on_train_begin()
        if epochs > 0 and not self.stop_training:
            hooks.on_epoch_begin(0)
        batch_size, epochs = 32 if batch_size is None else batch_size, 0 if self.stop_training else epochs
        try:
            ps, histories = fit_population(
                population, x, y, batch_size, epochs,
                shuffle=bool(shuffle), sample_weight=sample_weight, validation_split=validation_split,
                validation_data=validation_data, on_epoch_end=after_epoch, state=ps,
            )
        except BaseException:
            # The steps consumed the state they were given; the members still hold (on the host) the
            # weights last kept, and a next fit starts from those, its optimizer state afresh.
            if self._state is not None and any(leaf.is_deleted() for leaf in _device_leaves(self._state)):
                self._state = None
            raise
        self._keep(ps)
        history = EnsembleHistory(histories)
        hooks.on_train_end(logs={name: values[-1] for name, values in history.history.items()})
        return history

    @property
    def params(self) -> dict:
        """The members' params stacked on a leading axis, on the host (callbacks read and set these)."""
        return _host_stack([m.params for m in self.members])

    @params.setter
    def params(self, params: dict) -> None:
        self._set_weights(params, self.state)

    @property
    def state(self) -> dict:
        """The members' non-trainable state stacked on a leading axis, on the host."""
        return _host_stack([m.state for m in self.members])

    @state.setter
    def state(self, state: dict) -> None:
        self._set_weights(self.params, state)

    def _set_weights(self, params: dict, state: dict) -> None:
        """Members (and the population state that a next ``fit`` continues from) holding these weights."""
        params, state = _on_host((params, state))
        if self._state is not None:
            self._state = self._state._replace(train=self._state.train._replace(params=params, state=state))
        weights = zip(_unstacked(params, self.n_members), _unstacked(state, self.n_members))
        self.members = [_member(self.model, i, w) for i, w in enumerate(weights)]

    def _keep(self, ps: PopulationState) -> None:
        """Hold ``ps`` as the state a next ``fit`` continues from, its weights as the members'."""
        self._state = ps
        self._set_weights(ps.train.params, ps.train.state)

    def _population_for(self, what: str) -> Population:
        """The population ``compile`` made; a clear error before it."""
        if self._population is None:
            raise ValueError(f"You must call compile() before you {what} the DeepEnsemble '{self.name}'.")
        return self._population

    def _start_state(self, population: Population) -> PopulationState:
        """The last fit's state, or (after ``compile``) a fresh one holding the members' current weights."""
        if self._state is not None:
            return self._state
        ps = population.init()
        params, state = stack([(m.params, m.state) for m in self.members])
        return ps._replace(train=ps.train._replace(params=params, state=state))

    # ------------------------------------------------------------------ inference
    def predict(self, x: Any, batch_size: int | None = None, return_std: bool = False) -> Any:
        """The members' mean prediction; with ``return_std``, ``(mean, std)`` across members (``np.std``)."""
        outputs = [m.predict(x, batch_size=batch_size, verbose=0) for m in self.members]
        mean = jax.tree.map(lambda *o: np.mean(np.stack(o), axis=0), *outputs)
        if not return_std:
            return mean
        return mean, jax.tree.map(lambda *o: np.std(np.stack(o), axis=0), *outputs)

    def averaged(self) -> Model:
        """The members' uniform average as one Model (``dj.ensemble.average``), compiled as the ensemble."""
        model = average(self.members, name=self.name)
        if self._compiled is not None:
            model.compile(**self._compiled)
        return model

    def evaluate(
        self, x: Any, y: Any, batch_size: int | None = None, verbose: int | str = "auto",
        return_dict: bool = False,
    ) -> float | list | dict:
        """Loss and metrics of the averaged model (:meth:`averaged`), as ``Model.evaluate`` gives them."""
        self._population_for("evaluate")
        return self.averaged().evaluate(x, y, batch_size=batch_size, verbose=verbose, return_dict=return_dict)

    # ------------------------------------------------------------------ files
    def save(self, filepath: Any, overwrite: bool = True) -> None:
        """Save the averaged model (:meth:`averaged`), its members nested: ``dj.load_model`` reads it too."""
        self.averaged().save(filepath, overwrite=overwrite, include_optimizer=False)

    @classmethod
    def load(cls, filepath: Any, seed: int = 0) -> DeepEnsemble:
        """A DeepEnsemble whose members hold the weights of the nested models of a file :meth:`save` wrote.

        It comes back compiled as saved; a later ``fit`` continues from the
        members' weights with a fresh optimizer state, shuffling with ``seed``.
        """
        from dagjax.io import load_model

        loaded = load_model(filepath)
        members = [layer for layer in loaded.layers if isinstance(layer, Model)]
        if not members:
            raise ValueError(f"{filepath!s} holds no nested models: not a file DeepEnsemble.save wrote.")
        ensemble = cls(clone_model(members[0]), len(members), seed, loaded.name)
        weights = [(loaded.params.get(m.name, {}), loaded.state.get(m.name, {})) for m in members]
        ensemble.members = [_member(ensemble.model, i, w) for i, w in enumerate(weights)]
        if loaded.compiled:
            saved = loaded.fit_session.compile_arguments
            keys = ("optimizer", "loss", "metrics", "loss_weights", "auto_scale_loss")
            ensemble.compile(**{k: saved[k] for k in keys})
        return ensemble


def _member(model: Model, index: int, weights: tuple[dict, dict]) -> Model:
    """A clone of ``model`` named ``member_<index>`` holding ``weights`` (params, state)."""
    clone = clone_model(model)
    clone.name = f"member_{index}"
    clone.params, clone.state = weights
    return clone


def _on_host(tree: Any) -> Any:
    """``tree``'s arrays as numpy; one split across processes (a member's kernel under a ModelParallel
    whose model axis spans them) is gathered first, a collective every process joins alike."""
    return jax.device_get(jax.tree.map(host_value, tree))


def _host_stack(trees: list[dict]) -> dict:
    """The members' trees stacked on a leading axis as numpy arrays; ``{}`` for none (no state)."""
    return jax.tree.map(lambda *leaves: np.stack(leaves), *jax.device_get(trees)) if trees[0] else {}


def _unstacked(tree: dict, size: int) -> list[dict]:
    """The members of a stacked tree; ``size`` empty dicts for a model without any (no state)."""
    return unstack(tree, size) if jax.tree.leaves(tree) else [{} for _ in range(size)]


_SESSION_CALLBACKS = (ReduceLROnPlateau, LearningRateScheduler, TensorBoard, BackupAndRestore)


def _epoch_callbacks(callbacks: list | None, ensemble: DeepEnsemble, **params: Any) -> CallbackList:
    """The callbacks bound to ``ensemble``; the ones it cannot run refused now, before any training."""
    hooks = CallbackList(callbacks)
    for callback in hooks.callbacks:
        weights_only = isinstance(callback, ModelCheckpoint) and callback.save_weights_only
        if isinstance(callback, _SESSION_CALLBACKS) or weights_only:
            what = "ModelCheckpoint(save_weights_only=True)" if weights_only else type(callback).__name__
            raise ValueError(
                f"DeepEnsemble.fit cannot run {what}: it needs one model's training session or weights file. "
                "An ensemble's callbacks run at epoch ends and see the ensemble (stop_training, params, "
                "state, save): EarlyStopping, TerminateOnNaN, ModelCheckpoint, CSVLogger, LambdaCallback."
            )
    if hooks.has_batch_hooks("train"):
        names = ", ".join(sorted({type(c).__name__ for c in hooks.callbacks}))
        raise ValueError(
            f"DeepEnsemble.fit runs each epoch as one compiled call, so batch hooks cannot run ({names} "
            "override one); move the work to on_epoch_end."
        )
    hooks.configure(ensemble, **params)
    return hooks


def _mean_logs(logs: list) -> dict:
    """The members' mean of each log of an epoch, as Python floats."""
    trained = [log for log in logs if log is not None]
    return {name: log_value(np.mean([log[name] for log in trained], axis=0)) for name in trained[0]}


def _printer(epochs: int) -> Any:
    """An ``on_epoch_end`` hook printing the members' mean logs, one line per epoch."""

    def hook(epoch: int, logs: list) -> None:
        means = _mean_logs(logs)
        print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in means.items()))

    return hook


def _device_leaves(tree: Any) -> list:
    return [leaf for leaf in jax.tree_util.tree_leaves(tree) if isinstance(leaf, jax.Array)]
