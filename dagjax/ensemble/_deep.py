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

from dagjax.ensemble._average import average
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

    # ------------------------------------------------------------------ training
    def compile(
        self, optimizer: Any = "rmsprop", loss: Any = None, metrics: Any = None, loss_weights: Any = None
    ) -> None:
        """Set every member's optimizer, loss and metrics; the optimizer state starts afresh, as in Keras."""
        self._compiled = dict(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=loss_weights)
        self._population = Population(
            self.model, loss, optimizer, size=self.n_members, seed=self.seed,
            loss_weights=loss_weights, metrics=metrics,
        )
        self._state = None

    def fit(
        self,
        x: Any,
        y: Any,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        validation_data: tuple | None = None,
        shuffle: bool | str = True,
    ) -> EnsembleHistory:
        """Train every member for ``epochs`` on ``(x, y)`` as one program; continues from the last ``fit``.

        ``shuffle``: ``True`` (every member sees the same shuffled batches),
        ``False`` (in order) or ``"per_member"`` (each its own shuffle).
        """
        population = self._population_for("fit")
        if shuffle not in _SHUFFLES:
            raise ValueError(f"shuffle must be True, False or 'per_member', got {shuffle!r}.")
        ps = self._start_state(population)
        offsets = np.arange(self.n_members) if shuffle == "per_member" else np.zeros(self.n_members, int)
        ps = ps._replace(seed=jnp.asarray(self.seed + offsets, jnp.int32))
        ps, histories = fit_population(
            population, x, y, 32 if batch_size is None else batch_size, epochs,
            shuffle=bool(shuffle), validation_data=validation_data,
            on_epoch_end=None if verbose == 0 else _printer(epochs),
            state=ps,
        )
        self._state = ps
        weights = zip(_unstacked(ps.train.params, self.n_members), _unstacked(ps.train.state, self.n_members))
        self.members = [_member(self.model, i, w) for i, w in enumerate(weights)]
        return EnsembleHistory(histories)

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
            ensemble.compile(**{k: saved[k] for k in ("optimizer", "loss", "metrics", "loss_weights")})
        return ensemble


def _member(model: Model, index: int, weights: tuple[dict, dict]) -> Model:
    """A clone of ``model`` named ``member_<index>`` holding ``weights`` (params, state)."""
    clone = clone_model(model)
    clone.name = f"member_{index}"
    clone.params, clone.state = weights
    return clone


def _unstacked(tree: dict, size: int) -> list[dict]:
    """The members of a stacked tree; ``size`` empty dicts for a model without any (no state)."""
    return unstack(tree, size) if jax.tree.leaves(tree) else [{} for _ in range(size)]


def _printer(epochs: int) -> Any:
    """An ``on_epoch_end`` hook printing the members' mean logs, one line per epoch."""

    def hook(epoch: int, logs: list) -> None:
        trained = [log for log in logs if log is not None]
        means = {name: np.mean([log[name] for log in trained]) for name in trained[0]}
        print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in means.items()))

    return hook
