"""``Population``: K trainings of one model as one program, each member with its own scalar hyperparameters.

The members' train states are stacked on a leading axis (a
:class:`PopulationState`), and the core's train step is ``jax.vmap``-ped over
them: one trace, one compilation, whatever K and whatever the values. What
differs between members is data, never code:

- ``seed``: the member's initial weights (``model.init(jax.random.key(seed))``),
  its step rngs (``step_rng(seed, step)``) and, in :func:`fit_population`,
  its data shuffles; as a model trained by ``fit`` after ``compile(seed=seed)``;
- optimizer arguments (``learning_rate``, ``beta_1``, ``momentum``...): kept in
  each member's optimizer state (``inject_hyperparams``); or, given one raw
  optax transformation per member, the numbers in which they differ;
- ``loss_weights`` and layers' values (``"dropout/rate"``, ``"dense/kernel/l2"``):
  in ``PopulationState.hyperparams``, given to the core step as traced values.

A member whose ``active`` flag is False is frozen: its params, state,
optimizer state, step and metrics keep their values (``jnp.where`` on the
new and old state) while the others train on.

>>> pop = Population(model, "mse", "sgd", hyperparams={"learning_rate": [0.1, 0.01], "seed": [0, 1]})
>>> ps = pop.init()
>>> ps, logs = jax.jit(pop.train_step)(ps, (x, y), pop.step_rngs(ps), [True, True])
>>> logs["loss"].shape
(2,)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dagjax.layers import flat_tunables
from dagjax.model._facade import has_keras_step, has_own_train_step
from dagjax.training.core import (
    Trainer,
    TrainState,
    make_trainer,
    resolve_objective,
    step_rng,
    trainable_only,
)
from dagjax.training.optimizers import set_hyperparams, with_loss_scaling
from dagjax.training.population._members import Members, members, nested
from dagjax.training.population._optimizer import per_member_constants, shared_optimizer
from dagjax.training.population._stacking import stack

if TYPE_CHECKING:
    from dagjax.model import Model


class PopulationState(NamedTuple):
    """Every member's training state, each leaf stacked on a leading member axis; a pytree."""

    train: TrainState  # params, model state, optimizer state (with its varying arguments), step, metrics
    hyperparams: dict  # the step's traced values: {"loss_weights": (K, outputs), "layers": {...: (K,)}}
    seed: jax.Array  # (K,) int32: each member's seed


def keep_where(active: jax.Array, new: Any, old: Any) -> Any:
    """``new`` where ``active`` (one member's flag), else ``old``: a frozen member's state stays as it was."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new, old)


class Population:
    """K members of ``model``'s training, one compiled program for all (see the module).

    ``loss``, ``loss_weights``, ``metrics`` and ``weighted_metrics`` take
    ``compile``'s forms and hold for every member; ``hyperparams`` maps a name
    to one value per member: ``"seed"``, ``"loss_weights"``, a layer value by
    its path in ``model.tunable()`` (``"dropout/rate"``), or an optimizer
    argument. ``optimizer`` is one for all members, or a list with one per
    member that differ only in numbers (``[optax.adam(1e-3), optax.adam(3e-3)]``).
    ``size`` is the number of members (default: the lists' length);
    members without a ``"seed"`` list get ``seed, seed + 1, ...``.
    ``target_shapes`` picks shape-dependent losses and metrics as in
    ``build_trainer``. ``auto_scale_loss``: as ``compile``'s, a model computing
    in float16 (``mixed_float16``) trains its members with the optimizer in a
    ``LossScaleOptimizer`` (each member its own scale); False trains with it as given.
    """

    def __init__(
        self,
        model: Model,
        loss: Any,
        optimizer: Any = "rmsprop",
        *,
        hyperparams: Mapping[str, Sequence] | None = None,
        size: int | None = None,
        seed: int = 0,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        auto_scale_loss: bool = True,
        target_shapes: list | None = None,
    ) -> None:
        model._refuse_step_overrides()
        if has_own_train_step(type(model)) or has_keras_step(type(model), "test_step"):
            raise NotImplementedError(
                f"{type(model).__name__} defines its own train_step or test_step; a population (and "
                "DeepEnsemble, and the tuners' population path) trains and evaluates every member with the "
                "default steps. Train it with fit."
            )
        names = list(model.output_names)
        self.model = model
        abstract = model.abstract_weights(trainable=True)
        if not isinstance(auto_scale_loss, bool):
            raise TypeError(f"Population(auto_scale_loss={auto_scale_loss!r}): expected True or False.")
        scaled = (lambda tx: with_loss_scaling(tx, model)) if auto_scale_loss else (lambda tx: tx)
        wrap = lambda tx: trainable_only(scaled(tx), model)  # as compile: scaling inside, then freezing
        if isinstance(optimizer, (list, tuple)) and not isinstance(optimizer, optax.GradientTransformation):
            if size is not None and size != len(optimizer):
                raise ValueError(f"optimizer: a list of {len(optimizer)} for a population of size {size}.")
            size = len(optimizer)
            optimizer, constants = per_member_constants(optimizer, abstract, wrap)
            hyperparams = {**(hyperparams or {}), **constants}
        self.objective = resolve_objective(
            names, loss, loss_weights, metrics, weighted_metrics, isinstance(model.output, dict)
        )
        tunable = flat_tunables(model.tunable())
        self._members_of = lambda values, count: members(
            names, loss, loss_weights, values, count, seed, tunable
        )  # checked per-member values, for init(hyperparams) too
        self.members = self._members_of(hyperparams, size)
        self.optimizer = shared_optimizer(optimizer, self.members.optimizer, abstract, wrap)
        self.trainer = self.trainer_for(target_shapes)
        self.compiled: dict = {}  # fit_population's trainer and programs per target layout, kept for reuse
        self._init_states = jax.jit(jax.vmap(self.trainer.init_train_state))  # compiled once, on first init

    @property
    def size(self) -> int:
        """The number of members."""
        return self.members.size

    def trainer_for(self, target_shapes: list | None) -> Trainer:
        """The core trainer every member runs, for targets of these shapes (None: like the outputs)."""
        preds = [t.shape for t in self.model.outputs]
        shapes = None
        if target_shapes is not None:
            shapes = [p if s is None else s for s, p in zip(target_shapes, preds)]
        return make_trainer(self.model, self.objective, self.optimizer, shapes)

    # ------------------------------------------------------------------ state
    def init(self, hyperparams: Mapping[str, Sequence] | None = None) -> PopulationState:
        """Every member's fresh state: weights from its seed, optimizer state holding its own values.

        ``hyperparams`` gives the members other values of the same names (and
        as many members): a state the same compiled programs train, so a
        search can reuse one population for batch after batch of trials.
        """
        chosen = self.members if hyperparams is None else self._other_members(hyperparams)
        weights = [self.model.init(jax.random.key(seed)) for seed in chosen.seeds]
        params, state = stack(weights)
        train = self._init_states(params, state)
        opt_state = set_hyperparams(train.opt_state, chosen.optimizer)
        traced = {"loss_weights": jnp.asarray(chosen.loss_weights)}
        if chosen.layers:
            traced["layers"] = jax.tree_util.tree_map(jnp.asarray, nested(chosen.layers))
        seeds = jnp.asarray(np.asarray(chosen.seeds, np.int32))
        return PopulationState(train._replace(opt_state=opt_state), traced, seeds)

    def _other_members(self, hyperparams: Mapping[str, Sequence]) -> Members:
        """The members' values from ``hyperparams``, checked to fit this population's program."""
        other = self._members_of(hyperparams, self.size)
        varied = lambda m: sorted([*m.optimizer, *m.layers])
        if varied(other) != varied(self.members):
            raise ValueError(
                f"init(hyperparams) must vary what the population was made to vary, {varied(self.members)}; "
                f"got {varied(other)}."
            )
        return other

    # ------------------------------------------------------------------ pure steps
    def step_rngs(self, ps: PopulationState) -> jax.Array:
        """Each member's rng for its next step: ``step_rng(seed, step)``, as ``fit`` draws it."""
        return member_rngs(ps)

    def train_step(
        self,
        ps: PopulationState,
        batch: tuple,
        rngs: jax.Array,
        active: Sequence[bool] | jax.Array | None = None,
        batch_axis: int | None = None,
    ) -> tuple[PopulationState, dict]:
        """One step of every active member on ``batch``; the state and each member's running logs ``(K,)``.

        ``batch`` is shared by all members (``batch_axis=None``) or holds one
        batch per member on axis 0 (``batch_axis=0``); ``rngs`` one key per
        member (:meth:`step_rngs`); ``active`` one flag per member (None: all).
        """
        return train_members(self.trainer, ps, batch, rngs, self.flags(active), batch_axis)

    def eval_step(self, ps: PopulationState, batch: tuple, batch_axis: int | None = None) -> PopulationState:
        """Every member's losses and metrics of ``batch`` accumulated, in inference mode."""
        step = lambda ts, hyper, b: self.trainer.eval_step(ts, b, hyper)
        train = jax.vmap(step, in_axes=(0, 0, batch_axis))(ps.train, ps.hyperparams, batch)
        return ps._replace(train=train)

    def predict_step(self, ps: PopulationState, x: Any, batch_axis: int | None = None) -> Any:
        """Every member's outputs for ``x``, stacked on a leading member axis."""
        predict = jax.vmap(self.trainer.predict_step, in_axes=(0, 0, batch_axis))
        return predict(ps.train.params, ps.train.state, x)

    def reset_metrics(self, ps: PopulationState) -> PopulationState:
        """``ps`` with every member's loss trackers and metrics zeroed."""
        return ps._replace(train=reset_member_metrics(self.trainer, ps.train, ps.seed.shape[0]))

    def metric_results(self, ps: PopulationState) -> dict:
        """Each log, as Keras names it, with one value per member (leading axis)."""
        return member_results(self.trainer, ps.train.metrics)

    def flags(self, active: Sequence[bool] | jax.Array | None) -> jax.Array:
        """One bool per member (None: all), its length checked."""
        if active is None:
            return jnp.ones((self.size,), bool)
        if np.shape(active) != (self.size,):
            raise ValueError(f"active needs one flag per member ({self.size}), got shape {np.shape(active)}.")
        return jnp.asarray(active, bool)


def member_rngs(ps: PopulationState) -> jax.Array:
    """Each member's rng for its next step, ``step_rng(seed, step)``: the one ``fit`` would draw."""
    return jax.vmap(step_rng)(ps.seed, ps.train.step)


def train_members(
    trainer: Trainer, ps: PopulationState, batch: tuple, rngs: jax.Array, active: jax.Array,
    batch_axis: int | None = None,
) -> tuple[PopulationState, dict]:
    """:meth:`Population.train_step` for any trainer (the core step ``vmap``-ped, frozen members kept)."""

    def one(ts, hyper, b, rng, on):
        new, _ = trainer.train_step(ts, b, rng, hyper)
        kept = keep_where(on, new, ts)
        return kept, trainer.metric_results(kept)

    step = jax.vmap(one, in_axes=(0, 0, batch_axis, 0, 0))
    train, logs = step(ps.train, ps.hyperparams, batch, rngs, active)
    return ps._replace(train=train), logs


def reset_member_metrics(trainer: Trainer, train: TrainState, size: int) -> TrainState:
    """``train`` (stacked) with every member's metrics zeroed."""
    fresh = trainer.reset_metrics(TrainState(None, None, None, None, {})).metrics
    stacked = jax.tree_util.tree_map(lambda v: jnp.broadcast_to(v, (size, *v.shape)), fresh)
    return train._replace(metrics=stacked)


def member_results(trainer: Trainer, metrics: dict) -> dict:
    """Each log with one value per member, from stacked metric states."""
    return jax.vmap(lambda m: trainer.metric_results(TrainState(None, None, None, None, m)))(metrics)
