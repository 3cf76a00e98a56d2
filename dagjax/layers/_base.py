"""The layer contract: configuration in the object, arrays in pytrees.

A layer is a pure ``init``/``apply`` pair plus the bookkeeping that lets it be
called on symbolic tensors:

- ``declare_weights(*input_specs) -> list[WeightSpec]`` declares the layer's own weights
  (names, shapes, initializers) from the input shapes. Nothing is allocated.
- ``call(params, *inputs) -> outputs`` computes the outputs; layers that need
  ``state``, ``training`` or ``rng`` override ``apply`` instead.
- ``init(rng, *input_specs) -> (params, state)`` and
  ``apply(params, state, *inputs, training=False, rng=None) -> (outputs, new_state)``
  are what models and research code use.
- ``uses_batch_mask = True`` opts a layer whose training output depends on
  other rows of the batch (batch statistics, as BatchNormalization) into
  ``apply(..., mask=None)``: in a padded batch (the last of a ``fit`` epoch)
  ``mask`` (batch,) is 1.0 for real rows and 0.0 for padding rows, which must
  not count. Other layers are never passed ``mask``.

Keras masks (``_mask_flow``): ``supports_masking`` layers give their outputs
the mask ``compute_mask(inputs, mask)`` returns (the first input's mask by
default), ``creates_mask`` layers (``Embedding(mask_zero=True)``, ``Masking``)
make one from no mask, and ``uses_input_mask`` layers read their inputs' masks
in ``apply(..., input_mask=...)``.

Layers holding other layers (wrappers, nested models) list them in
``sublayers``; their parameters nest under each sublayer's name. They opt in
to ``mask`` when a sublayer does, and pass it on with ``batch_mask_kwargs``.

A subclass may instead be written as for Keras 3 (``build`` + ``add_weight``
+ ``call(inputs)``): ``layers._keras_style`` says how the style is told apart
and runs such layers through the same ``init``/``apply``.

Each layer has a dtype policy (``dtype=`` a name or a ``DTypePolicy``; the
global one when the layer is made, as Keras): its weights are made in the
policy's ``variable_dtype``, and a model runs it on inputs and weights cast to
its ``compute_dtype`` (``layers._autocast``); ``apply`` itself computes in
the dtypes it is given.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax import initializers, regularizers
from dagjax._graph import Node, SymbolicTensor, describe_shapes, flatten, is_symbolic
from dagjax._naming import to_snake_case, unique_name
from dagjax.layers import _autocast, _builtin_call, _keras_style
from dagjax.layers import _dtype_policy as dtype_policies
from dagjax.layers._input_spec import check_against_spec
from dagjax.layers._keras_api import KerasLayerAPI
from dagjax.layers._mask_flow import call_mask_specs, masked_inputs, output_mask_specs, visible_mask
from dagjax.layers._specs import PROBE_SIZES, TensorSpec, WeightSpec, as_spec, merge_probes, probe
from dagjax.layers._tunable import factor_tunables, regularized

_BASE_ARGUMENTS = ("name", "trainable", "dtype", "activity_regularizer")


def _checked_name(name: Any) -> str:
    """``name`` if it can name a layer: a non-empty string without a path separator (as Keras)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"A layer name must be a non-empty string, got {name!r}.")
    if "/" in name or "\\" in name:  # a name is one key, and one path component
        raise ValueError(
            f"Layer name {name!r} contains '/' or '\\'. A name keys the parameter pytree and "
            "becomes one part of file paths (TensorBoard's projector), so it cannot hold a separator."
        )
    return name


class LayerInputError(ValueError):
    """A layer was called on inputs it cannot take; the message names the layer."""


def _initial_value(w: WeightSpec, rng, path: tuple):
    tag = zlib.crc32("/".join(path).encode())
    if isinstance(w.initializer, initializers.Initializer):
        return w.initializer.from_seed(initializers.key_words(rng, tag), w.shape, w.dtype)
    return w.initializer(jax.random.fold_in(rng, tag), w.shape, w.dtype)


def batch_mask_kwargs(layer: Layer, mask: Any) -> dict:
    """``{"mask": mask}`` for ``apply`` of a layer that opted in with ``uses_batch_mask``, else ``{}``."""
    return {"mask": mask} if mask is not None and layer.uses_batch_mask else {}


# Keras arguments dagjax does not implement, with the value that asks for nothing (constraints: None)
_KERAS_ONLY = {
    "synchronized": False,
    "use_cudnn": "auto",
    "lora_rank": None,
    "lora_alpha": None,
    "quantization_config": None,
    "weights": None,  # Embedding's and Bidirectional's initial weights
    "mask": None,  # Lambda's output mask
}


def _input_shape_argument(arguments: dict) -> tuple | None:
    """Keras's legacy ``input_shape=`` (or ``input_dim=``), taken out of ``arguments``: a Sequential's input.

    Keras 3 still reads it on a Sequential's first layer, with a warning to use ``Input`` instead.
    """
    shape, dim = arguments.pop("input_shape", None), arguments.pop("input_dim", None)
    if shape is None and dim is None:
        return None
    warnings.warn(
        "Do not pass an `input_shape`/`input_dim` argument to a layer. When using Sequential models, "
        "prefer using an `Input(shape)` object as the first layer in the model instead.",
        UserWarning,
        stacklevel=4,
    )
    return tuple(shape) if shape is not None else (int(dim),)


def _check_keras_only(layer: str, arguments: dict) -> None:
    """Accept Keras arguments dagjax lacks at their do-nothing value; any other value is a clear error."""
    for key, value in arguments.items():
        if not (key.endswith("_constraint") or key in _KERAS_ONLY):
            raise TypeError(f"{layer}() got an unexpected keyword argument {key!r}.")
        default = _KERAS_ONLY.get(key)
        # "==" only on plain values: ``weights`` may hold arrays, which compare elementwise
        if value is not None and not (isinstance(value, (str, bool)) and value == default):
            raise NotImplementedError(
                f"{layer}({key}={value!r}): dagjax does not support {key} yet; leave it out "
                f"(or pass {default!r}, Keras's default)."
            )


class Layer(KerasLayerAPI):
    """Base class of every layer (and of :class:`dagjax.Model`).

    Class attributes ``input_ndim`` / ``min_ndim`` declare the rank a
    single-input layer accepts (batch dim included), checked at call time.
    """

    _keras_style: bool = False  # written as for Keras (build, add_weight, call(inputs)): set per subclass
    _call_over_builtin: bool = False  # a built-in layer's subclass with a Keras-style call(inputs)
    _builtin_apply: Any = None  # the built-in apply that super().call(inputs) runs (``_builtin_call``)
    _traces_call: bool = False  # True where a subclass's call(inputs) becomes a graph instead (Model)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._keras_style = _keras_style.is_keras_style(cls)
        inherited = cls._call_over_builtin and not {"call", "apply"} & set(vars(cls))
        cls._call_over_builtin = _builtin_call.overrides_builtin_call(cls) or inherited
        if not (cls._keras_style or cls._call_over_builtin) and "call" in vars(cls):
            cls.call = _builtin_call.taking_bound_params(cls.call)  # super().call(x) from a Keras-style call
        if cls._call_over_builtin and not cls._traces_call:
            _override_builtin(cls)
        if not cls._keras_style:
            return
        if "uses_input_mask" not in vars(cls):  # call(inputs, mask=None) gets the masks
            cls.uses_input_mask = "mask" in inspect.signature(cls.call).parameters
        if "supports_masking" not in vars(cls) and cls.compute_mask is not Layer.compute_mask:
            cls.supports_masking = True  # as Keras 3: a layer with its own compute_mask supports masking

    input_ndim: int | None = None
    min_ndim: int | None = None
    uses_rng: bool = False  # True for layers that draw random numbers (Dropout, ...)
    uses_batch_mask: bool = False  # True for layers that take the padding mask (BatchNormalization, ...)
    uses_hyperparams: bool = False  # True for layers whose apply takes traced values of their own (Dropout)
    autocast: bool = True  # False: run on inputs and weights as they come (see layers._autocast)
    autocast_weights: bool = True  # False: weights stay in the variable dtype (BatchNormalization's)
    supports_masking: bool = False  # True for layers whose outputs keep a Keras mask (``compute_mask``)
    creates_mask: bool = False  # True for layers that make a mask from none (Embedding(mask_zero=True))
    uses_input_mask: bool = False  # True for layers whose apply reads their inputs' masks (``input_mask=``)
    call_keywords: tuple[str, ...] = ()  # keyword arguments a symbolic call takes (attention layers')

    def __init__(
        self,
        name: str | None = None,
        trainable: bool = True,
        activity_regularizer: Any = None,
        dtype: Any = None,
        **keras_only: Any,
    ) -> None:
        self._input_shape_arg = _input_shape_argument(keras_only)
        _check_keras_only(type(self).__name__, keras_only)
        if name is None:
            name = unique_name(to_snake_case(type(self).__name__))
        self.name = _checked_name(name)
        self._trainable = bool(trainable)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self._dtype_policy = dtype_policies.get(dtype)
        self._inbound_nodes: list[Node] = []
        self._weight_specs: list[WeightSpec] | None = None
        self._built_for: Any = None

    # ------------------------------------------------------------------ to override
    def declare_weights(self, *input_specs: Any) -> list[WeightSpec]:
        """The layer's own weights for these input specs (none; ``build``'s for a Keras-style layer)."""
        return _keras_style.declare(self, *input_specs) if self._keras_style else []

    def call(self, params: dict, *inputs: Any, **kwargs: Any) -> Any:
        """Outputs from inputs and params, for layers with no state, rng or training mode.

        Here: ``super().call(inputs)`` from a Keras-style ``call`` overriding a built-in's ``apply``.
        """
        if _builtin_call.reaches_builtin(self, params) and self._builtin_apply is not None:
            return _builtin_call.builtin_call(self, (params, *inputs), kwargs)
        raise NotImplementedError(f"{type(self).__name__} must implement call() or apply().")

    def apply(
        self, params: dict, state: dict, *inputs: Any, training: bool = False, rng: jax.Array | None = None,
        input_mask: Any = None,
    ) -> tuple[Any, dict]:
        """``(outputs, new_state)``: pure, safe under ``jit``/``grad``/``vmap``.

        ``input_mask`` (Keras-style layers whose ``call`` takes ``mask``): the arguments' Keras masks.
        """
        if self._keras_style or self._call_over_builtin:
            masks = _keras_style.call_mask_kwargs(input_mask)
            return _keras_style.apply(self, params, state, *inputs, training=training, rng=rng, **masks)
        return self.call(params, *inputs), state

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The outputs' Keras mask, from the first input and its mask: that mask, by default (Keras's)."""
        return mask

    def output_mask_specs(self, node: Node, specs: tuple, mask_of: Any = visible_mask) -> list | None:
        """Per output of the call ``node``, the spec of its Keras mask (``_mask_flow``'s rules)."""
        return output_mask_specs(self, node, specs, mask_of)

    @property
    def trainable(self) -> bool:
        """Whether training updates this layer (a frozen BatchNormalization also runs in inference mode)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        # As in Keras, freezing or unfreezing a container (a model, a wrapper) does the same to all inside it.
        self._trainable = bool(value)
        for layer in self.sublayers.values():
            layer.trainable = value

    @property
    def sublayers(self) -> dict[str, Layer]:
        """Layers owned by this one; their weights nest under their names (Keras-style: its attributes)."""
        return _keras_style.tracked_sublayers(self) if self._keras_style else {}

    @property
    def dtype_policy(self) -> dtype_policies.DTypePolicy:
        """The layer's :class:`~dagjax.mixed_precision.DTypePolicy` (set it with what ``dtype=`` takes)."""
        return self._dtype_policy

    @dtype_policy.setter
    def dtype_policy(self, value: Any) -> None:
        self._dtype_policy = dtype_policies.get(value)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the layer's weights, as Keras's ``layer.dtype`` (its ``variable_dtype``)."""
        return jnp.dtype(self._dtype_policy.variable_dtype)

    @dtype.setter
    def dtype(self, value: Any) -> None:
        self._dtype_policy = dtype_policies.get(value)

    @property
    def compute_dtype(self) -> str:
        """The dtype the layer computes in and returns (``bfloat16`` under ``mixed_bfloat16``)."""
        return self._dtype_policy.compute_dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype the layer's weights are made and kept in."""
        return self._dtype_policy.variable_dtype

    def check_input(self, *input_specs: Any) -> None:
        """Raise :class:`LayerInputError` for inputs this layer cannot take (and Keras's error for inputs
        its ``input_spec`` refuses)."""
        declared = self.__dict__.get("input_spec")
        if declared is not None and input_specs:
            check_against_spec(declared, flatten(input_specs[0]), self.name)
        if len(input_specs) != 1 or (self.input_ndim is None and self.min_ndim is None):
            return
        (spec,) = input_specs
        if not hasattr(spec, "shape"):
            raise self.input_error(f"expects a single tensor, got {type(spec).__name__}")
        ndim = len(spec.shape)
        if self.input_ndim is not None and ndim != self.input_ndim:
            raise self.input_error(
                f"expects input of rank {self.input_ndim} (batch dim included), "
                f"got shape {spec.shape} of rank {ndim}"
            )
        if self.min_ndim is not None and ndim < self.min_ndim:
            raise self.input_error(
                f"expects input of rank >= {self.min_ndim} (batch dim included), "
                f"got shape {spec.shape} of rank {ndim}"
            )

    def compute_output_spec(self, *input_specs: Any, **options: Any) -> Any:
        """Output shapes and dtypes, by tracing ``apply`` abstractly (no compute); ``options``: the call's.

        A Keras-style layer's own ``compute_output_shape``, when it has one, is used instead (as Keras).
        """
        if self._keras_style and (given := _keras_style.output_spec(self, *input_specs)) is not None:
            return given
        params = self.abstract_weights(trainable=True)
        state = self.abstract_weights(trainable=False)
        tensors = {
            key: value for key, value in options.items()
            if any(isinstance(leaf, TensorSpec) for leaf in flatten(value))
        }
        static = {key: value for key, value in options.items() if key not in tensors}
        has_unknown = any(None in s.shape for s in flatten((input_specs, tensors)))

        def trace(size: int):
            probes = jax.tree_util.tree_map(lambda s: probe(s, size), (input_specs, tensors))
            try:
                out, _ = jax.eval_shape(
                    lambda p, s, xs, m: self.apply(
                        _autocast.autocast_weights(self, p), s, *xs[0], training=False, **xs[1], **m, **static
                    ),
                    params, state, probes, _keras_style.mask_probes(self, size),
                )
            except Exception as err:
                if not has_unknown or str(size) not in str(err):
                    raise
                # The stand-in size is in the message: say which of the user's dims it stands for.
                raise self.input_error(
                    f"failed on inputs of shape {describe_shapes(input_specs)} (shape inference traces each "
                    f"unknown dimension as {size}, the size in this message): {type(err).__name__}: {err}"
                ) from err
            return out

        first = trace(PROBE_SIZES[0])
        return merge_probes(first, trace(PROBE_SIZES[1]) if has_unknown else first)

    def get_config(self) -> dict:
        """The constructor's arguments as JSON data: what a model file records to rebuild the layer."""
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": dtype_policies.serialize(self._dtype_policy),
        }
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        """The layer ``get_config()`` describes, unbuilt (weights come when it is called).

        A subclass whose ``__init__`` takes neither ``**kwargs`` nor some of the
        base arguments this class's ``get_config`` records (``name``,
        ``trainable``, ``dtype``, ``activity_regularizer``) still round-trips:
        those are set once the layer is made.
        """
        parameters = inspect.signature(cls.__init__).parameters
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return cls(**config)
        later = {key: config[key] for key in _BASE_ARGUMENTS if key in config and key not in parameters}
        layer = cls(**{key: value for key, value in config.items() if key not in later})
        if "name" in later:
            layer.name = _checked_name(later["name"])
        if "trainable" in later:
            layer.trainable = later["trainable"]
        if "dtype" in later:
            layer.dtype_policy = later["dtype"]
        if "activity_regularizer" in later:
            layer.activity_regularizer = regularizers.get(later["activity_regularizer"])
        return layer

    # ------------------------------------------------------------------ provided
    def input_error(self, message: str) -> LayerInputError:
        """A :class:`LayerInputError` whose message starts with this layer's name and class."""
        return LayerInputError(f"Layer '{self.name}' ({type(self).__name__}) {message}.")

    def init(self, rng: jax.Array, *input_specs: Any) -> tuple[dict, dict]:
        """Fresh ``(params, state)`` for inputs with these specs (shape/dtype objects)."""
        if input_specs:
            self._ensure_built(*jax.tree_util.tree_map(as_spec, input_specs, is_leaf=is_symbolic))
        elif self._weight_specs is None:
            raise ValueError(f"Layer '{self.name}' has not been called yet: pass input specs to init.")
        return self.init_weights(rng)

    def init_weights(self, rng: jax.Array, path: tuple = ()) -> tuple[dict, dict]:
        """Initialise the weights of an already-built layer and its sublayers.

        Each weight is seeded by the key and its path in the pytree, so values
        do not depend on how many other weights the model has.
        """
        params: dict = {}
        state: dict = {}
        for w in self.weight_specs:
            value = _initial_value(w, rng, (*path, w.name))
            (params if w.trainable else state)[w.name] = jnp.asarray(value, w.dtype)
        for name, sub in self.sublayers.items():
            if not sub.count_params():
                continue
            sub_params, sub_state = sub.init_weights(rng, (*path, name))
            if sub_params:
                params[name] = sub_params
            if sub_state:
                state[name] = sub_state
        return params, state

    @property
    def weight_specs(self) -> list[WeightSpec]:
        """The layer's own weights (none before the first call but a Keras-style ``__init__``'s)."""
        if self._weight_specs is None and self._keras_style:
            return list(self.__dict__.get("_keras_specs", []))
        return self._weight_specs or []

    @property
    def built(self) -> bool:
        """Whether the layer has been called (or ``init`` given specs), so its weights are declared."""
        return self._weight_specs is not None

    @built.setter
    def built(self, value: bool) -> None:
        """Accepted for Keras code that ends ``build`` with ``self.built = True``; dagjax tracks it itself."""

    def weight_paths(self) -> Iterator[tuple[str, tuple]]:
        """``("params"|"state", path)`` of every weight, in Keras's ``layer.weights`` order."""
        own = self.weight_specs
        for w in [w for w in own if w.trainable] + [w for w in own if not w.trainable]:
            yield ("params" if w.trainable else "state"), (w.name,)
        for name, sub in self.sublayers.items():
            for collection, path in sub.weight_paths():
                yield collection, (name, *path)

    def weight_penalty(self, params: dict, hyperparams: dict | None = None) -> Any:
        """Sum of the weight regularizers' penalties over ``params`` (the Python ``0.0`` when there are none).

        Starting from a Python number keeps a model without regularizers from
        tracing one zero and one addition per layer into every train step.
        ``hyperparams`` (a :meth:`tunable`-shaped tree) gives factors as traced values.
        """
        given = hyperparams or {}
        total = 0.0
        for w in self.weight_specs:
            if w.regularizer is not None and w.trainable:
                total = total + regularized(w.regularizer, given.get(w.name))(params[w.name])
        for name, sub in self.sublayers.items():
            if name in params:
                total = total + sub.weight_penalty(params[name], given.get(name))
        return total

    def tunable(self) -> dict:
        """The scalars a step can take traced, as a tree of ``Tunable`` (see ``layers._tunable``).

        Here: the regularizer factors of the layer's own trainable weights and
        of its activity regularizer. A wrapper's sublayers keep theirs fixed.
        """
        tree = {w.name: factor_tunables(w.regularizer) for w in self.weight_specs if w.trainable}
        tree["activity_regularizer"] = factor_tunables(self.activity_regularizer)
        return {name: leaves for name, leaves in tree.items() if leaves}

    def abstract_weights(self, trainable: bool) -> dict:
        """``params`` (``trainable=True``) or ``state`` as ``jax.ShapeDtypeStruct`` leaves: no arrays made.

        The tree ``init`` would return, for abstract tracing (``jax.eval_shape``) and for checking
        weights from a file before loading them.
        """
        tree = {
            w.name: jax.ShapeDtypeStruct(tuple(w.shape), w.dtype)
            for w in self.weight_specs
            if w.trainable == trainable
        }
        for name, sub in self.sublayers.items():
            sub_tree = sub.abstract_weights(trainable)
            if sub_tree:
                tree[name] = sub_tree
        return tree

    def _ensure_built(self, *input_specs) -> None:
        """Check inputs and declare weights on first use; check consistency on reuse."""
        self.check_input(*input_specs)
        specs = self._in_variable_dtype(self.declare_weights(*input_specs))
        if self._weight_specs is None:
            self._weight_specs = list(specs)
            self._built_for = input_specs
            return
        old = [(w.name, tuple(w.shape)) for w in self._weight_specs]
        new = [(w.name, tuple(w.shape)) for w in specs]
        if old != new:
            raise self.input_error(
                f"was first called on inputs of shape {describe_shapes(self._built_for)} and is "
                f"now called on {describe_shapes(input_specs)}; a shared layer needs weights of "
                f"the same shapes ({old} vs {new})"
            )

    def _in_variable_dtype(self, specs: list[WeightSpec]) -> list[WeightSpec]:
        """Weights declared float32 (the default) made in the policy's variable dtype instead, as Keras."""
        dtype = jnp.dtype(self.variable_dtype)
        if dtype == jnp.float32:
            return specs
        return [dataclasses.replace(w, dtype=dtype) if jnp.dtype(w.dtype) == jnp.float32 else w
                for w in specs]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Record a call on symbolic tensors in the graph and return its symbolic outputs.

        On arrays: inside a Keras-style layer's running ``call``, run as its sublayer; a Keras-style layer
        in no running call runs eagerly on its own weights (``layers._keras_style``).
        """
        if not any(map(is_symbolic, jax.tree_util.tree_leaves(args, is_leaf=is_symbolic))):
            if _keras_style.in_running_call():
                return _keras_style.call_in_scope(self, args, dict(kwargs))
            if self._keras_style and args:
                return _keras_style.call_eagerly(self, args, dict(kwargs))
        options = training_option(self, kwargs.pop("training", None))
        mask = kwargs.pop("mask", None)
        if kwargs:
            raise TypeError(
                f"Layer '{self.name}' was called with keyword arguments {sorted(kwargs)}; "
                "pass tensors positionally (training mode is set by model.apply)."
            )
        if mask is not None:  # an explicit mask for the first argument, in place of the one it carries
            if not all(map(is_symbolic, jax.tree_util.tree_leaves(mask, is_leaf=is_symbolic))):
                raise TypeError(f"Layer '{self.name}': mask= takes symbolic tensors: {type(mask).__name__}.")
            options["mask"] = mask
        return self.record_call(args, options)

    def record_call(self, args: tuple, options: dict | None = None) -> Any:
        """Record ``layer(*args, **options)`` on symbolic tensors as a graph node.

        ``options`` (JSON values, or symbolic tensors) go to every ``apply`` of the node as keywords,
        and into the model config.
        """
        options = options or {}
        leaves = jax.tree_util.tree_leaves(args, is_leaf=is_symbolic)
        if not leaves or not all(is_symbolic(x) for x in leaves):
            raise TypeError(
                f"Layer '{self.name}' must be called on symbolic tensors (from dj.Input or "
                "another layer) to build a graph. To run it on arrays, use "
                "`params, state = layer.init(rng, x)` and `layer.apply(params, state, x)`, "
                "or build a dj.Model and call the model."
            )
        specs = jax.tree_util.tree_map(as_spec, args, is_leaf=is_symbolic)
        self.__dict__["_call_masks"] = call_mask_specs(args, options) if self.uses_input_mask else None
        try:
            self._ensure_built(*specs)
            shape_options = {key: value for key, value in options.items() if key not in ("training", "mask")}
            option_specs = jax.tree_util.tree_map(
                lambda v: as_spec(v) if is_symbolic(v) else v, shape_options, is_leaf=is_symbolic
            )
            out_specs = self.compute_output_spec(*_autocast.autocast_inputs(self, specs), **option_specs)
            # A Keras-style compute_output_spec returns KerasTensors (dj.KerasTensor(shape, dtype)).
            out_specs = jax.tree_util.tree_map(
                lambda v: as_spec(v) if is_symbolic(v) else v, out_specs, is_leaf=is_symbolic
            )
            node = Node(self, args, out_specs, options)
            node.masked_inputs = masked_inputs(args, options)
            node.output_masks = self.output_mask_specs(node, specs)
        except (LayerInputError, _keras_style.UntraceableCallError):
            raise
        except Exception as err:  # shape rule failures from jax, in the user's words
            raise self.input_error(
                f"cannot be called on input shape {describe_shapes(specs)}: {err}"
            ) from err
        finally:
            self.__dict__.pop("_call_masks", None)
        self._inbound_nodes.append(node)
        return node.outputs

    # ------------------------------------------------------------------ Keras introspection
    @property
    def inbound_nodes(self) -> list[Node]:
        """Every call of this layer on symbolic tensors, as a graph ``Node``, in call order (as Keras's).

        A layer shared by several models lists its calls in all of them; a model's ``nodes`` are its own.
        """
        return list(self._inbound_nodes)

    def _first_node(self, what: str) -> Node:
        """The layer's first call: Keras 3's ``input`` / ``output`` read it, however often it was called."""
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has not been called yet, so it has no {what}.")
        return self._inbound_nodes[0]

    @property
    def input(self) -> Any:
        """The symbolic input(s) of the layer's first call (a list for several arguments), as Keras 3's."""
        node = self._first_node("input")
        return node.args[0] if len(node.args) == 1 else list(node.args)

    @property
    def output(self) -> Any:
        """The symbolic output(s) of the layer's first call, as Keras 3's."""
        return self._first_node("output").outputs

    @property
    def input_shape(self) -> Any:
        """The shape(s) of ``input``, batch dim (``None``) first."""
        return jax.tree_util.tree_map(lambda t: t.shape, self.input, is_leaf=is_symbolic)

    @property
    def output_shape(self) -> Any:
        """The shape(s) of ``output``, batch dim (``None``) first."""
        return jax.tree_util.tree_map(lambda t: t.shape, self.output, is_leaf=is_symbolic)

    def count_params(self) -> int:
        """Number of scalars in the layer's weights and its sublayers', trainable or not (0 until built)."""
        total = sum(int(np.prod(w.shape)) for w in self.weight_specs)
        return total + sum(sub.count_params() for sub in self.sublayers.values())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


__all__ = ["Layer", "LayerInputError", "SymbolicTensor", "TensorSpec", "WeightSpec"]


def _override_builtin(cls: type) -> None:
    """A built-in's subclass whose Keras-style ``call`` overrides it: runs that ``call`` (``_builtin_call``).

    Over a built-in that implements ``apply``, ``apply`` becomes the Keras-style one and the built-in's is
    kept for ``super().call``; shapes are traced through the new ``call``, and its ``mask`` argument, if
    any, gets the inputs' masks.
    """
    if "uses_input_mask" not in vars(cls):
        cls.uses_input_mask = cls.uses_input_mask or _builtin_call.takes_mask(cls)
    if cls.apply is Layer.apply or "apply" in vars(cls):
        return
    cls._builtin_apply = cls._builtin_apply or cls.apply
    cls.apply = _builtin_call.apply_over_builtin
    if "compute_output_spec" not in vars(cls):
        cls.compute_output_spec = Layer.compute_output_spec


def training_option(layer: Layer, training: Any) -> dict:
    """A symbolic call's ``training=`` as a node option: None follows ``apply``'s mode, a bool fixes it.

    A fixed ``True`` on a layer that draws random numbers is refused: inference (``predict``) gives no rng.
    """
    training = getattr(training, "resolved", training)  # a subclassed model's traced ``training``
    if training is None:
        return {}
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"Layer '{layer.name}': training= takes True, False or None, got {training!r:.60}.")
    if training and layer.uses_rng:
        raise NotImplementedError(
            f"Layer '{layer.name}' ({type(layer).__name__}) was called with training=True, which would need "
            "random numbers in inference too (predict draws none). Leave training out: the layer follows "
            "fit (training) and predict (inference), or call model.apply(..., training=True, rng=key)."
        )
    return {"training": bool(training)}
