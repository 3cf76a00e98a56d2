"""Trials trained together: a batch of built models split into populations, each one compiled program.

A search with ``population=K`` asks the study for up to K trials, builds
each, and groups them here. Members of one group share the training program
(``population.group_by_architecture``) and every ``compile`` argument except
what a population can vary per member: the seed, the loss weights, the
Keras-style optimizer's numeric arguments (``learning_rate``, ``beta_1``...),
the numbers in which raw optax transformations of one program differ
(``optax.adam(hp.Float("lr", ...))``: read from the traced update, see
``population.optimizer_program``) and layers' tunable values (Dropout rates,
L1/L2 factors). The rest trains one trial at a time as before: a
transformation whose program cannot be read, a ``HyperModel`` with a
``fit`` of its own, user callbacks, ``executions_per_trial > 1``, or fit
arguments the population driver does not take.

Each member starts from the weights its ``build`` gave it and draws the
batches and rngs ``fit`` would under its compile seed, so its scores are the
ones a sequential trial gets (up to float32 rounding of the varied values).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from dagjax import population as pop
from dagjax.training.core import NotSerializableError, compile_config, trainable_only
from dagjax.training.optimizers import KerasOptimizer
from dagjax.training.optimizers import get as get_optimizer

_FIT_KEYS = {
    "epochs", "batch_size", "validation_split", "validation_data", "shuffle", "sample_weight", "verbose",
}


class Data(NamedTuple):
    """What every member trains on: ``fit_population``'s arguments."""

    x: Any
    y: Any
    sample_weight: Any
    validation_split: float
    validation_data: tuple | None
    batch_size: int
    epochs: int
    shuffle: bool


def population_data(fit_args: tuple, fit_kwargs: dict) -> Data | None:
    """The search's fit arguments as a population trains on them; None where it cannot (see the module)."""
    kwargs = dict(fit_kwargs)
    names = ("x", "y", "batch_size", "epochs")
    if len(fit_args) > len(names) or any(n in kwargs for n in names[: len(fit_args)]):
        return None
    kwargs.update(zip(names, fit_args))
    x, y = kwargs.pop("x", None), kwargs.pop("y", None)
    if not set(kwargs) <= _FIT_KEYS or x is None or y is None:
        return None
    split, validation = kwargs.get("validation_split") or 0.0, kwargs.get("validation_data")
    return Data(
        x, y, kwargs.get("sample_weight"), split, validation,
        kwargs.get("batch_size") or 32, kwargs.get("epochs", 1), kwargs.get("shuffle", True),
    )


class Group(NamedTuple):
    """Indices of a batch's models that train as one population, and the values that differ between them."""

    indices: list[int]
    hyperparams: dict[str, list]
    program: tuple  # what one population trains: architecture, settings, names varied, size


def _optimizer_settings(model: Any, optimizer: Any, config: dict) -> tuple[Any, dict] | None:
    """``(what must match, per-member values)`` of the compiled optimizer; None where it cannot be shared."""
    if isinstance(optimizer, KerasOptimizer):
        settings = config["optimizer"]["config"]
        injectable = optimizer.recipe.injectable
        return settings, {n: settings.pop(n) for n in injectable if isinstance(settings.get(n), (int, float))}
    try:
        wrapped = trainable_only(optimizer, model)
        return pop.optimizer_program(wrapped, model.abstract_weights(trainable=True))
    except Exception:  # a program that cannot be read trains alone, as before
        return None


def _settings(model: Any) -> tuple[str, dict] | None:
    """``(what must match, per-member values)`` of a compiled model; None when it cannot join a population."""
    arguments = model.fit_session.compile_arguments
    raw = isinstance(arguments["optimizer"], optax.GradientTransformation) and not isinstance(
        arguments["optimizer"], KerasOptimizer
    )
    try:
        config = compile_config({**arguments, "optimizer": get_optimizer("sgd")} if raw else arguments)
    except NotSerializableError:
        return None
    optimizer = _optimizer_settings(model, arguments["optimizer"], config)
    if optimizer is None:
        return None
    config["optimizer"], values = optimizer
    values["seed"] = config.pop("seed")
    values["loss_weights"] = arguments["loss_weights"]
    del config["loss_weights"]
    return json.dumps(config, sort_keys=True), values


def _differing(values: list[dict]) -> dict[str, list]:
    """The values that differ between members (the seed always), one list per name."""
    names = {n for v in values for n in v}
    lists = {n: [v[n] for v in values] for n in names}
    return {n: vs for n, vs in lists.items() if n == "seed" or any(v != vs[0] for v in vs)}


def plan(models: Sequence[Any]) -> tuple[list[Group], list[int]]:
    """The populations among ``models`` (by architecture, then compile settings) and the ones left alone."""
    groups, alone = [], []
    for same_program in pop.group_by_architecture(models):
        architecture = pop.architecture_key(models[same_program[0]])
        by_settings: dict[str, list[tuple[int, dict]]] = {}
        for index in same_program:
            settings = _settings(models[index])
            if settings is None:
                alone.append(index)
            else:
                by_settings.setdefault(settings[0], []).append((index, settings[1]))
        for settings, members in by_settings.items():
            indices = [i for i, _ in members]
            hyperparams = _differing([v for _, v in members])
            layers = pop.tunable_hyperparams([models[i] for i in indices])
            per_member = [{n: vs[k] for n, vs in layers.items()} for k in range(len(indices))]
            hyperparams.update(_differing(per_member))
            program = (architecture, settings, tuple(sorted(hyperparams)), len(indices))
            groups.append(Group(indices, hyperparams, program))
    return groups, alone


def population_of(
    models: Sequence[Any], hyperparams: dict, known: pop.Population | None = None
) -> tuple[pop.Population, pop.PopulationState]:
    """The population of ``models`` (one program, one compile setting), its state holding their weights.

    ``known``: a population of an earlier batch with the same ``Group.program``, whose
    compiled programs then train these members too. The weights are stacked on the
    host: ``jnp.stack`` would compile a program per weight shape.
    """
    population = known
    if population is None:
        first = models[0].fit_session.compile_arguments
        population = pop.Population(
            models[0], first["loss"], first["optimizer"], hyperparams=hyperparams,
            loss_weights=first["loss_weights"], metrics=first["metrics"],
            weighted_metrics=first["weighted_metrics"],
        )
    ps = population.init(hyperparams)
    weights = jax.device_get([(m.params, m.state) for m in models])
    params, state = jax.device_put(jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *weights))
    return population, ps._replace(train=ps.train._replace(params=params, state=state))
