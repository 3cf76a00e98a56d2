"""Keras 3 optimizers as optax ``GradientTransformation``s, with Keras's update maths.

``Adam(learning_rate=1e-3)`` and friends take Keras's argument names and
defaults and return an optax transformation whose step equals the Keras
optimizer's step: gradient clipping (``clipnorm`` / ``global_clipnorm`` /
``clipvalue``), then decoupled weight decay ``p -= p * weight_decay * lr``,
then the optimizer's own rule, written as Keras writes it (epsilon outside
the square root, the learning rate inside SGD's momentum, Nadam's momentum
schedule). Pass ``params`` to ``update``: weight decay reads them.

The learning rate lives in the optimizer state (``optax.inject_hyperparams``),
so it can be read and changed between steps without recompiling:

>>> opt = Adam(learning_rate=1e-3)
>>> state = opt.init({"w": jnp.zeros(3)})
>>> state = set_learning_rate(state, 1e-4)   # from dagjax.optimizers
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from dagjax.training.objectives._keras_objects import from_keras
from dagjax.training.objectives._serialization import NotSerializableError
from dagjax.training.optimizers import _schedules as schedules
from dagjax.training.optimizers._rules import (
    Rule,
    adadelta,
    adagrad,
    adam,
    adamax,
    given,
    lion,
    nadam,
    rmsprop,
    sgd,
)
from dagjax.training.optimizers._stateless import KerasStatelessApply

LearningRate = float | Callable[[jax.Array], jax.Array]


class KerasOptimizerState(NamedTuple):
    """Keras's step counter, per-parameter ``slots`` by slot name, and the rule's ``shared`` state."""

    iterations: jax.Array
    slots: dict[str, Any]
    shared: Any


def _clip(grads, clipnorm, clipvalue, global_clipnorm):
    """Keras's gradient clipping: per-tensor norm, else global norm, else value."""
    if clipnorm and clipnorm > 0:

        def clip_norm(g):
            l2sum = jnp.sum(jnp.square(g), keepdims=True)
            l2norm = jnp.where(l2sum > 0, jnp.sqrt(jnp.where(l2sum > 0, l2sum, 1.0)), l2sum)
            return g * clipnorm / jnp.maximum(l2norm, clipnorm)

        return jax.tree.map(clip_norm, grads)
    if global_clipnorm and global_clipnorm > 0:
        norm = optax.global_norm(grads)
        scale = global_clipnorm * jnp.minimum(1.0 / norm, 1.0 / global_clipnorm) + (norm - norm)
        return jax.tree.map(lambda g: g * scale, grads)
    if clipvalue and clipvalue > 0:
        return jax.tree.map(lambda g: jnp.clip(g, -clipvalue, clipvalue), grads)
    return grads


def keras_transform(
    rule: Rule,
    learning_rate: jax.Array,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> optax.GradientTransformation:
    """An optax transformation that applies ``rule`` with Keras's clipping and weight decay."""

    def init(params: Any) -> KerasOptimizerState:
        """Step 0, each slot filled with its initial value in every parameter's shape, the shared state."""
        slots = {
            name: jax.tree.map(lambda p, v=value: jnp.full_like(p, v), params)
            for name, value in rule.slots.items()
        }
        return KerasOptimizerState(jnp.zeros([], jnp.int32), slots, rule.shared)

    def update(grads: Any, state: KerasOptimizerState, params: Any = None) -> tuple[Any, KerasOptimizerState]:
        """The updates to add to ``params`` (clipped, weight-decayed, by the rule) and the next state."""
        decays = given(weight_decay)
        if decays and params is None:
            raise ValueError(
                "This optimizer applies weight decay, so update() needs params: "
                "opt.update(grads, opt_state, params)."
            )
        grads = _clip(grads, clipnorm, clipvalue, global_clipnorm)
        t = (state.iterations + 1).astype(jnp.float32)
        shared = rule.advance(state.shared, t)
        flat_grads, treedef = jax.tree.flatten(grads)
        flat_slots = {name: treedef.flatten_up_to(tree) for name, tree in state.slots.items()}
        flat_params = treedef.flatten_up_to(params) if decays else [None] * len(flat_grads)
        deltas, new_slots = [], {name: [] for name in flat_slots}
        for i, (g, p) in enumerate(zip(flat_grads, flat_params)):
            lr = jnp.asarray(learning_rate, g.dtype)
            delta, slots = rule.step(
                g, {name: leaves[i] for name, leaves in flat_slots.items()}, lr, t, shared
            )
            if decays:
                delta = delta - p * jnp.asarray(weight_decay, p.dtype) * lr
            deltas.append(delta)
            for name, value in slots.items():
                new_slots[name].append(value)
        slots = {name: treedef.unflatten(leaves) for name, leaves in new_slots.items()}
        return treedef.unflatten(deltas), KerasOptimizerState(
            optax.safe_increment(state.iterations), slots, shared
        )

    return optax.GradientTransformation(init, update)


# Keras-style constructors ---------------------------------------------------------------------------


class Recipe(NamedTuple):
    """How a Keras-style optimizer is made, kept so that it can be made again with more of it injected.

    ``numbers`` are the rule's numeric arguments, which may be kept in the
    optimizer state (``inject_hyperparams``: traced in the step, so each member
    of a population can have its own); ``static`` are those that shape the
    state or the program (``amsgrad``, ``nesterov``, an initial accumulator).
    """

    make_rule: Callable[..., Rule]
    numbers: dict
    static: dict
    learning_rate: LearningRate
    weight_decay: float | None
    clips: dict

    @property
    def injectable(self) -> tuple[str, ...]:
        """What :meth:`build` can keep in the state: learning rate, weight decay if set, ``numbers``."""
        decay = () if self.weight_decay is None else ("weight_decay",)
        return ("learning_rate", *decay, *self.numbers)

    def build(self, injected: Sequence[str] = ()) -> optax.GradientTransformation:
        """The optax transformation, its learning rate and the ``injected`` arguments kept in its state.

        Arguments left out are Python numbers in the program, as Keras has
        them; an injected one is a float32 array, so its step can differ from
        Keras's in the last bits.
        """
        fixed = {**self.numbers, "weight_decay": self.weight_decay}

        def factory(learning_rate, **values):
            args = {**fixed, **values}
            weight_decay = args.pop("weight_decay")
            rule = self.make_rule(**args, **self.static)
            return keras_transform(rule, learning_rate, weight_decay, **self.clips)

        values = {name: fixed[name] for name in injected if name != "learning_rate"}
        keyword = inspect.Parameter.KEYWORD_ONLY  # inject_hyperparams reads the names from the signature
        factory.__signature__ = inspect.Signature(
            [inspect.Parameter(name, keyword) for name in ("learning_rate", *values)]
        )
        inject = optax.inject_hyperparams(factory, hyperparam_dtype=jnp.float32)
        return inject(learning_rate=self.learning_rate, **values)


class KerasOptimizer(KerasStatelessApply, optax.GradientTransformationExtraArgs):
    """A Keras-style optimizer's optax transformation, which remembers how it was made.

    ``class_name`` and ``get_config()`` are the constructor and its arguments
    (defaults filled in), so a model file can record the optimizer and
    ``dj.load_model`` can make it again. Keras's JAX-backend ``build`` / ``variables`` /
    ``stateless_apply`` come from ``_stateless``. Everything else is optax's.
    """

    def __new__(
        cls,
        init: Callable,
        update: Callable,
        class_name: str = "",
        config: dict | None = None,
        recipe: Recipe | None = None,
        injected: tuple[str, ...] = (),
    ):
        optimizer = super().__new__(cls, init, update)
        optimizer.class_name, optimizer._config, optimizer.recipe = class_name, dict(config or {}), recipe
        optimizer.injected = tuple(injected)  # the arguments kept in the state besides the learning rate
        return optimizer

    def get_config(self) -> dict:
        """The constructor's arguments, as Keras's ``optimizer.get_config()`` gives them."""
        return dict(self._config)

    def injecting(self, *names: str) -> KerasOptimizer:
        """This optimizer with the numeric arguments ``names`` kept in its state too, as its learning rate is.

        Each can then be read and set between steps, and differ between the
        members of a population trained as one program (one state per member).
        """
        injectable = self.recipe.injectable if self.recipe is not None else ()
        unknown = [name for name in names if name not in injectable]
        if unknown:
            decay = "weight_decay" in unknown
            hint = " (give it a weight_decay, 0.0 for none, to vary that)" if decay else ""
            raise ValueError(
                f"{self.class_name or 'This optimizer'} cannot keep {unknown} in its state{hint}; "
                f"it can keep: {', '.join(injectable) or 'nothing'}."
            )
        tx = self.recipe.build(names)
        return KerasOptimizer(tx.init, tx.update, self.class_name, self._config, self.recipe, names)


def _recorded(constructor: Callable[..., Recipe]) -> Callable[..., KerasOptimizer]:
    """``constructor``, returning a :class:`KerasOptimizer` that records its name, arguments and recipe."""
    signature = inspect.signature(constructor)

    @functools.wraps(constructor)
    def make(*args: Any, **kwargs: Any) -> KerasOptimizer:
        recipe = constructor(*args, **kwargs)
        arguments = signature.bind(*args, **kwargs)
        arguments.apply_defaults()
        tx = recipe.build()
        return KerasOptimizer(tx.init, tx.update, constructor.__name__, arguments.arguments, recipe)

    make.__annotations__ = {**constructor.__annotations__, "return": "KerasOptimizer"}
    return make


def _recipe(
    make_rule: Callable[..., Rule],
    numbers: dict,
    static: dict,
    learning_rate: LearningRate,
    weight_decay: float | None,
    clipnorm: float | None,
    clipvalue: float | None,
    global_clipnorm: float | None,
) -> Recipe:
    """A checked :class:`Recipe`: one clipping at most, a float or schedule learning rate."""
    clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
    if sum(v is not None for v in clips.values()) > 1:
        raise ValueError(f"Only one of clipnorm, clipvalue and global_clipnorm can be set, got {clips}.")
    if isinstance(learning_rate, bool) or not (
        isinstance(learning_rate, (int, float)) or callable(learning_rate)
    ):
        raise ValueError(
            f"learning_rate must be a float or a schedule (step -> rate), got {learning_rate!r}."
        )
    return Recipe(make_rule, numbers, static, learning_rate, weight_decay, clips)


@_recorded
def SGD(
    learning_rate: LearningRate = 0.01,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """Gradient descent with optional (Nesterov) momentum; the learning rate sits inside the momentum."""
    if not 0 <= momentum <= 1:
        raise ValueError(f"SGD momentum must be a float in [0, 1], got {momentum}.")
    return _recipe(
        sgd, {"momentum": momentum}, {"nesterov": nesterov},
        learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
    )


@_recorded
def RMSprop(
    learning_rate: LearningRate = 0.001,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """RMSprop: ``lr * g / sqrt(mean_square + epsilon)`` (epsilon inside the root, as in Keras)."""
    return _recipe(
        rmsprop,
        {"rho": rho, "momentum": momentum, "epsilon": epsilon},
        {"centered": centered},
        learning_rate,
        weight_decay,
        clipnorm,
        clipvalue,
        global_clipnorm,
    )


@_recorded
def Adam(
    learning_rate: LearningRate = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """Adam with the bias correction folded into the step size and epsilon outside the root, as in Keras."""
    return _recipe(
        adam,
        {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon},
        {"amsgrad": amsgrad},
        learning_rate,
        weight_decay,
        clipnorm,
        clipvalue,
        global_clipnorm,
    )


@_recorded
def AdamW(
    learning_rate: LearningRate = 0.001,
    weight_decay: float = 0.004,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """Adam with decoupled weight decay ``p -= p * weight_decay * lr`` before each step."""
    if weight_decay is None:
        raise ValueError("AdamW needs a weight_decay value; use Adam for none.")
    return _recipe(
        adam,
        {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon},
        {"amsgrad": amsgrad},
        learning_rate,
        weight_decay,
        clipnorm,
        clipvalue,
        global_clipnorm,
    )


@_recorded
def Adagrad(
    learning_rate: LearningRate = 0.001,
    initial_accumulator_value: float = 0.1,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """Adagrad: ``lr * g / sqrt(sum of squared gradients + epsilon)``."""
    return _recipe(
        adagrad,
        {"epsilon": epsilon},
        {"initial_accumulator_value": initial_accumulator_value},
        learning_rate,
        weight_decay,
        clipnorm,
        clipvalue,
        global_clipnorm,
    )


@_recorded
def Adadelta(
    learning_rate: LearningRate = 0.001,
    rho: float = 0.95,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """Adadelta, scaled by the learning rate as in Keras."""
    return _recipe(
        adadelta, {"rho": rho, "epsilon": epsilon}, {},
        learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
    )


@_recorded
def Adamax(
    learning_rate: LearningRate = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """Adamax: Adam with the infinity norm in place of the second moment."""
    return _recipe(
        adamax, {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}, {},
        learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
    )


@_recorded
def Nadam(
    learning_rate: LearningRate = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """Nadam: Adam with Nesterov momentum and Keras's momentum decay schedule."""
    return _recipe(
        nadam, {"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon}, {},
        learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
    )


@_recorded
def Lion(
    learning_rate: LearningRate = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.99,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
) -> Recipe:
    """Lion: the sign of an interpolated momentum, times the learning rate."""
    return _recipe(
        lion, {"beta_1": beta_1, "beta_2": beta_2}, {},
        learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
    )


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": SGD,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "adamax": Adamax,
    "nadam": Nadam,
    "lion": Lion,
}


_BY_CLASS_NAME = {build.__name__: build for build in OPTIMIZERS.values()}


def get(identifier: str | optax.GradientTransformation) -> optax.GradientTransformation:
    """An optax transformation: returned as is, or built from a Keras name (or Keras optimizer object)."""
    if isinstance(identifier, optax.GradientTransformation):
        return identifier
    keras_optimizer = from_keras(identifier, _BY_CLASS_NAME, _read_keras_config)
    if keras_optimizer is not None:
        return keras_optimizer
    if isinstance(identifier, str):
        if identifier.lower() not in OPTIMIZERS:
            raise ValueError(
                f"Unknown optimizer {identifier!r}. Valid names: {', '.join(OPTIMIZERS)}, "
                "or pass any optax GradientTransformation."
            )
        return OPTIMIZERS[identifier.lower()]()
    raise TypeError(
        f"Could not interpret optimizer {identifier!r}: expected a name such as 'adam', an optax "
        "GradientTransformation, or a keras.optimizers object of a kind dagjax has."
    )


def serialize(optimizer: optax.GradientTransformation) -> dict:
    """``{"class_name", "config"}`` of a Keras-style optimizer, for a model file.

    A built-in schedule as ``learning_rate`` is recorded as Keras records it.
    Raises ``NotSerializableError`` for any other optax transformation (code,
    which a file cannot hold) and for any other schedule (a function).
    """
    if not isinstance(optimizer, KerasOptimizer):
        raise NotSerializableError(
            "the optimizer is an optax transformation, which is code that a file cannot hold (dagjax's "
            "Keras-style optimizers, such as dj.optimizers.Adam(...) or the name 'adam', can be saved)"
        )
    config = optimizer.get_config()
    if isinstance(config.get("inner_optimizer"), optax.GradientTransformation):  # a LossScaleOptimizer's
        config["inner_optimizer"] = serialize(config["inner_optimizer"])
    rate = config.get("learning_rate")
    if type(rate) in schedules.SCHEDULES.values():  # a built-in schedule: a file names it
        config["learning_rate"] = schedules.serialize(rate)
    try:
        json.dumps(config)
    except (TypeError, ValueError) as err:
        raise NotSerializableError(
            f"the {optimizer.class_name} optimizer's config is not JSON data ({err}): "
            "a learning-rate schedule other than dagjax.optimizers.schedules' is a function, "
            "which a file cannot hold"
        ) from err
    spec = {"class_name": optimizer.class_name, "config": config}
    return {**spec, "injecting": list(optimizer.injected)} if optimizer.injected else spec


def deserialize(data: Any) -> KerasOptimizer:
    """The Keras-style optimizer ``serialize`` described."""
    spec = data if isinstance(data, dict) else {}
    if spec.get("class_name") == "LossScaleOptimizer" and isinstance(spec.get("config"), dict):
        from dagjax.training.optimizers._loss_scale import LossScaleOptimizer  # it wraps the others

        return LossScaleOptimizer(**spec["config"])
    constructor = _BY_CLASS_NAME.get(spec.get("class_name"))
    config = spec.get("config")
    if constructor is None or not isinstance(config, dict):
        known = ", ".join(_BY_CLASS_NAME)
        raise ValueError(f"Unknown optimizer {json.dumps(data)[:200]}: expected one of {known}.")
    if isinstance(config.get("learning_rate"), dict):
        config = {**config, "learning_rate": schedules.deserialize(config["learning_rate"])}
    injecting = spec.get("injecting", [])
    if not (isinstance(injecting, list) and all(isinstance(name, str) for name in injecting)):
        raise ValueError(f"An optimizer's 'injecting' is a list of argument names, got {injecting!r:.200}.")
    optimizer = constructor(**config)
    return optimizer.injecting(*injecting) if injecting else optimizer


def _read_keras_config(config: dict) -> dict:
    """A Keras optimizer's config for dagjax: a serialized schedule becomes the schedule (a callable).

    dagjax's own schedule where it has the class (it runs as jnp, and a model file can record it),
    else Keras's object.
    """
    rate = config["learning_rate"]
    if not isinstance(rate, dict):
        return config
    if rate.get("class_name") in schedules.SCHEDULES:
        return {**config, "learning_rate": schedules.deserialize(rate)}
    from keras.optimizers.schedules import deserialize

    return {**config, "learning_rate": deserialize(rate)}
