"""Keras-style custom layers: ``build`` + ``add_weight`` + ``call(inputs)``, compiled into the pure apply.

**Which style a subclass uses.** A ``Layer`` subclass is *dagjax-style* when
it (or a base below ``Layer``) defines ``declare_weights`` or ``apply``, or
when its ``call``'s first argument is named ``params``; every other subclass
is *Keras-style*: written exactly as for Keras 3.

A Keras-style layer declares its weights with ``self.add_weight(...)`` in
``__init__`` or in ``build(input_shape)``; layers assigned as attributes
(also in lists and dicts) are its sublayers, their weights nested under their
names. On the first call, ``build`` runs with Keras's shapes (batch dim
``None``), then ``call`` is traced once on shapes only (``jax.eval_shape``)
so that the sublayers it calls build too. ``apply`` runs ``call`` inside a
binding scope (``layers._keras_scope``) where the weights are the traced
params and state, so the layer compiles into the model's one program and
stays pure; its ``assign``-ed non-trainable weights come back as new state.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

import jax
import numpy as np

from dagjax import initializers, regularizers
from dagjax.layers._keras_scope import (
    BindingScope,
    LossCollector,
    UntraceableCallError,
    innermost_binding,
    opened,
    trainable_assign_message,
)
from dagjax.layers._specs import PROBE_SIZES, TensorSpec, WeightSpec, as_spec, probe
from dagjax.layers._tunable import activity_penalty
from dagjax.layers._variables import Variable, home_of, replaced, unwrap_variables

_TRACER_ERRORS = (
    jax.errors.TracerBoolConversionError,
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerArrayConversionError,
)


def is_keras_style(cls: type) -> bool:
    """The rule in the module docstring: no ``declare_weights``/``apply`` of its own, no ``params`` first."""
    from dagjax.layers._base import Layer

    for klass in cls.__mro__:
        if klass is Layer:
            break
        if "declare_weights" in vars(klass) or "apply" in vars(klass):
            return False
    if cls.call is Layer.call:
        return "build" in dir(cls) and cls.build is not Layer.build
    arguments = [p for p in inspect.signature(cls.call).parameters.values() if p.name != "self"]
    return not (arguments and arguments[0].name == "params")


# ------------------------------------------------------------------ weights
def add_weight(layer: Any, shape: Any, initializer: Any, dtype: Any, trainable: bool, regularizer: Any,
               constraint: Any, name: str | None) -> Variable:
    """Declare one weight of ``layer`` (in ``__init__`` or ``build``) and return its ``Variable``."""
    if layer.__dict__.get("_keras_declared") is not None:
        raise UntraceableCallError(
            f"Layer '{layer.name}' ({type(layer).__name__}) calls add_weight once built (in call?). "
            "dagjax compiles call into a pure program, which cannot create weights: create them in "
            "__init__ or in build(input_shape)."
        )
    if constraint is not None:
        raise NotImplementedError(
            f"Layer '{layer.name}': add_weight(constraint=...) is not supported by dagjax yet; leave it out."
        )
    specs = layer.__dict__.setdefault("_keras_specs", [])
    if name is None:  # unique within the layer, so params keys and files do not depend on what else was built
        taken = {w.name for w in specs}
        name = next(n for i in itertools.count() if (n := f"variable_{i}" if i else "variable") not in taken)
    elif any(w.name == name for w in specs):
        raise ValueError(f"Layer '{layer.name}' already has a weight named {name!r}; names key its params.")
    dtype = np.dtype(dtype or layer.dtype)
    if initializer is None:
        initializer = "glorot_uniform" if np.issubdtype(dtype, np.floating) else "zeros"
    spec = WeightSpec(
        name, tuple(int(d) for d in (shape or ())), _initializer(initializer), dtype, bool(trainable),
        regularizers.get(regularizer),
    )
    specs.append(spec)
    variable = Variable(layer, name, spec.shape, dtype, spec.trainable)
    layer.__dict__.setdefault("_keras_variables", {})[name] = variable
    return variable


def _initializer(identifier: Any) -> Any:
    """dagjax's initializer for ``identifier``; a Keras-style function ``(shape, dtype=None)`` gets no key."""
    init = initializers.get(identifier)
    if isinstance(init, initializers.Initializer):
        return init
    try:
        first = next(iter(inspect.signature(init).parameters), None)
    except (TypeError, ValueError):
        return init
    if first != "shape":
        return init
    return lambda key, shape, dtype: init(shape, dtype=dtype)


def tracked_sublayers(layer: Any) -> dict:
    """Layers held in ``layer``'s attributes (directly, or in lists, tuples and dicts), by name."""
    from dagjax.layers._base import Layer

    found: dict[str, Any] = {}

    def track(value: Any) -> None:
        if isinstance(value, Layer):
            other = found.setdefault(value.name, value)
            if other is not value:
                raise ValueError(
                    f"Layer '{layer.name}' holds two layers named '{value.name}'; sublayer names key its "
                    "params, so give them different names."
                )
        elif isinstance(value, (list, tuple)):
            for item in value:
                track(item)
        elif isinstance(value, dict):
            for item in value.values():
                track(item)

    for value in vars(layer).values():
        track(value)
    return found


def _shape_arguments(layer: Any, specs: tuple, target: Any) -> tuple[tuple, dict]:
    """Input shapes as Keras passes them to ``target`` (``build`` / ``compute_output_shape``).

    One input (a tensor, or a list/dict of them), or a ``target`` taking one shape: the first input's
    shape structure, positionally. Several positional inputs (``call(self, x, y)``): by keyword,
    ``x_shape=..., y_shape=...``.
    """
    is_spec = lambda s: isinstance(s, TensorSpec)
    shapes = jax.tree_util.tree_map(lambda s: tuple(s.shape), specs, is_leaf=is_spec)
    if len(shapes) == 1 or len(inspect.signature(target).parameters) == 1:
        return (shapes[0],), {}
    names = [p.name for p in inspect.signature(type(layer).call).parameters.values()
             if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (), {f"{name}_shape": shape for name, shape in zip(names, shapes)}


def declare(layer: Any, *input_specs: Any) -> list[WeightSpec]:
    """Build once: ``build(input_shape)``, then one shape-only trace of ``call`` that builds its sublayers."""
    declared = layer.__dict__.get("_keras_declared")
    if declared is not None:
        return declared
    from dagjax.layers._base import Layer

    if type(layer).build is not Layer.build:
        args, kwargs = _shape_arguments(layer, input_specs, layer.build)
        layer.build(*args, **kwargs)
    specs = list(layer.__dict__.get("_keras_specs", []))
    layer.__dict__["_keras_declared"] = specs  # from here on, add_weight is an error
    if not tracked_sublayers(layer) and _states_its_output(layer):
        return specs  # nothing for a trace to build, and Keras would not trace this call either
    try:
        probes = jax.tree_util.tree_map(lambda s: probe(s, PROBE_SIZES[0]), input_specs)
        masks = call_mask_kwargs(mask_probes(layer, PROBE_SIZES[0]).get("input_mask"))
        jax.eval_shape(lambda xs, m: apply(layer, {}, {}, *xs, declaring=True, **m)[0], probes, masks)
    except BaseException:
        layer.__dict__["_keras_declared"] = None
        raise
    # A model gives a layer a key only when it draws random numbers: it does when a sublayer does.
    drew = layer.__dict__.get("_draws_random", False)  # its call used dagjax.random (``layers._random``)
    layer.uses_rng = drew or any(sub.uses_rng for sub in tracked_sublayers(layer).values())
    return specs


def _states_its_output(layer: Any) -> bool:
    """Whether the class says its output shape itself (``compute_output_shape`` / ``compute_output_spec``)."""
    from dagjax.layers._base import Layer

    return any(getattr(type(layer), name, None) is not getattr(Layer, name, None)
               for name in ("compute_output_shape", "compute_output_spec"))


def output_spec(layer: Any, *input_specs: Any) -> Any:
    """From the layer's own ``compute_output_shape`` (as Keras) when it has one, else None (trace instead)."""
    from dagjax.layers._base import Layer

    if getattr(type(layer), "compute_output_shape", None) is getattr(Layer, "compute_output_shape", None):
        return None
    args, kwargs = _shape_arguments(layer, input_specs, layer.compute_output_shape)
    shape = layer.compute_output_shape(*args, **kwargs)
    is_shape = lambda s: isinstance(s, tuple) and all(d is None or isinstance(d, int) for d in s)
    return jax.tree_util.tree_map(lambda s: TensorSpec(s, layer.dtype), shape, is_leaf=is_shape)


# ------------------------------------------------------------------ masks for call(inputs, mask=None)
def call_mask_kwargs(input_mask: Any) -> dict:
    """``{"mask": ...}`` for ``call`` from the arguments' masks: one argument's own, else the list of them."""
    if input_mask is None:
        return {}
    masks = list(input_mask)
    return {"mask": masks[0] if len(masks) == 1 else masks}


def mask_probes(layer: Any, size: int) -> dict:
    """``{"input_mask": shapes}`` of the masks the call being recorded sees, to trace ``call`` with; or {}."""
    masks = layer.__dict__.get("_call_masks")
    if masks is None or not any(m is not None for m in jax.tree_util.tree_leaves(masks, is_leaf=_is_none)):
        return {}
    return {"input_mask": jax.tree_util.tree_map(lambda s: probe(s, size), masks)}


def _is_none(value: Any) -> bool:
    return value is None


# ------------------------------------------------------------------ running call
def _call_kwargs(layer: Any, training: bool, extra: dict) -> dict:
    parameters = inspect.signature(type(layer).call).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    kwargs = dict(extra)
    if "training" in parameters or takes_any:
        kwargs.setdefault("training", training)
    return kwargs


def apply(layer: Any, params: dict, state: dict, *inputs: Any, training: bool = False, rng: Any = None,
          declaring: bool = False, builtin_options: dict | None = None,
          **call_kwargs: Any) -> tuple[Any, dict]:
    """``(outputs, new_state)``: ``layer.call(*inputs)``, its weights bound to ``params`` and ``state``.

    ``builtin_options``: the built-in's own ``apply`` options, for ``super().call`` (``_builtin_call``).
    """
    scope = BindingScope(layer, params, state, training, rng, declaring)
    scope.builtin_options = builtin_options or {}
    attributes = vars(layer)
    own = attributes.get("_keras_variables", {})
    rebound = {key: value for key, value in attributes.items()
               if isinstance(value, Variable) and value._trainable and own.get(value.name) is value}
    with opened(scope):
        for key, variable in rebound.items():  # self.kernel is the traced array while call runs
            attributes[key] = variable.value
        before = set(attributes)
        try:
            outputs = layer.call(*inputs, **_call_kwargs(layer, training, call_kwargs))
        except _TRACER_ERRORS as err:
            raise control_flow_error(layer, err) from err
        except AttributeError as err:
            if "attribute assign" not in str(err) and "attribute 'assign" not in str(err):
                raise
            raise UntraceableCallError(trainable_assign_message(layer)) from err
        except TypeError as err:
            if "Variable" not in str(err):
                raise
            raise UntraceableCallError(
                f"Layer '{layer.name}' ({type(layer).__name__}).call passes a non-trainable weight object "
                "to a function that takes arrays. A non-trainable weight stays an object in call so it can "
                "be assigned: pass `weight.value` to jax.numpy functions (operators such as `w + x` take "
                f"the weight itself). JAX said: {err}"
            ) from err
        finally:
            attributes.update(rebound)
        _refuse_stored_tensors(layer, before)
        outputs = unwrap_variables(outputs)  # a call may return a weight (read while bound)
    return outputs, scope.state


def _refuse_stored_tensors(layer: Any, before: set) -> None:
    for key, value in vars(layer).items():
        if isinstance(value, jax.core.Tracer):
            action = "stores" if key not in before else "changes"
            raise UntraceableCallError(
                f"Layer '{layer.name}' ({type(layer).__name__}).call {action} a tensor on the layer "
                f"(self.{key} = ...). dagjax compiles call into a pure program, which cannot keep Python "
                f"state between calls: keep such a value in a weight (`self.{key} = self.add_weight(..., "
                f"trainable=False)` in build, `self.{key}.assign(...)` in call), or return it as an output."
            )


def control_flow_error(layer: Any, err: Exception) -> UntraceableCallError:
    """Why a ``call`` that reads a tensor's value in Python cannot compile, and what to write instead."""
    return UntraceableCallError(
        f"Layer '{layer.name}' ({type(layer).__name__}).call uses a tensor's value in Python (an `if`, "
        "`while` or `for` on a tensor, `bool()`, `int()`, `float()`, `.item()` or `np.asarray`). dagjax "
        "compiles call once into a pure program, where tensors have shapes but no values yet. Write the "
        "choice with array operations instead: `jnp.where(cond, a, b)`, `jax.lax.cond`, "
        "`jax.lax.while_loop` or `jax.lax.fori_loop` (shapes, such as `x.shape[0]`, are Python numbers "
        f"and can steer Python freely). JAX said: {type(err).__name__}: {str(err).splitlines()[0]}"
    )


def call_in_scope(layer: Any, args: tuple, kwargs: dict) -> Any:
    """A layer called on arrays inside a running ``call``: run it on its part of the params and state."""
    scope = innermost_binding()
    path = scope.path_of(layer)
    if path is None or not path:
        raise UntraceableCallError(
            f"Layer '{layer.name}' ({type(layer).__name__}) is called inside '{scope.layer.name}'.call but "
            f"is not one of its attributes, so its weights have no place in '{scope.layer.name}''s params. "
            f"Create it once in __init__ (`self.{layer.name} = ...`) and call that attribute in call."
        )
    if not layer.built:
        if not scope.declaring:
            raise RuntimeError(f"Layer '{layer.name}' was not built when '{scope.layer.name}' was.")
        layer._ensure_built(*jax.tree_util.tree_map(as_spec, args))
    training = kwargs.pop("training", None)
    training = scope.training if training is None else bool(training)
    if kwargs.get("mask", ()) is None:
        kwargs.pop("mask")
    if kwargs and not layer._keras_style:
        raise TypeError(f"Layer '{layer.name}' got unexpected keyword arguments {sorted(kwargs)}.")
    params, state = scope.subtrees(layer, path)
    rng = scope.sublayer_rng() if layer.uses_rng else None
    if hasattr(layer, "apply_with_penalty"):  # a model: its own add_loss and activity penalties count too
        out, new_state, penalty = layer.apply_with_penalty(params, state, *args, training=training, rng=rng)
        scope.losses.append(penalty)
    else:
        out, new_state = _run(layer, params, state, args, training, rng, kwargs)
    if new_state and not scope.declaring:
        scope.set_state(path, new_state)
    if layer.activity_regularizer is not None:
        leaves = jax.tree_util.tree_leaves(out)
        scope.losses.append(activity_penalty(layer.activity_regularizer, leaves, None))
    return out


def _run(layer: Any, params: dict, state: dict, args: tuple, training: bool, rng: Any, kwargs: dict) -> tuple:
    """``layer.apply``; a Keras-style layer also takes its call's own keyword arguments."""
    if layer._keras_style:
        return apply(layer, params, state, *args, training=training, rng=rng, **kwargs)
    return layer.apply(params, state, *args, training=training, rng=rng)


def call_eagerly(layer: Any, args: tuple, kwargs: dict) -> Any:
    """A Keras-style layer called on arrays outside any model: run with its own weights, keep new state."""
    layer._ensure_built(*jax.tree_util.tree_map(as_spec, args))
    holder, tree_path, _ = home_of(layer)
    params, state = holder.weights_view()
    for key in tree_path:
        params, state = params.get(key, {}), state.get(key, {})
    training = bool(kwargs.pop("training", False))
    if kwargs.get("mask", ()) is None:
        kwargs.pop("mask")
    with opened(LossCollector()) as collector:
        out, new_state = _run(layer, params, state, args, training, None, kwargs)
    losses = list(collector.losses)
    if layer.activity_regularizer is not None:
        losses.append(activity_penalty(layer.activity_regularizer, jax.tree_util.tree_leaves(out), None))
    layer.__dict__["_keras_last_losses"] = losses
    if new_state:
        all_params, all_state = holder.weights_view()
        holder.restore_weights(all_params, replaced(all_state, tree_path, new_state), shared=True)
    return out


def in_running_call() -> bool:
    """Whether a Keras-style ``call`` is running (a layer called on arrays then is one of its sublayers)."""
    return innermost_binding() is not None


def may_add_losses(layer: Any) -> bool:
    """Whether ``layer`` or one inside it is Keras-style, so its call may ``add_loss``."""
    return layer._keras_style or any(may_add_losses(sub) for sub in layer.sublayers.values())
