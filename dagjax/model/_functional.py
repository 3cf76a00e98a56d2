"""``Model``: a graph of layers compiled into pure ``init`` / ``apply`` functions.

``Model(inputs, outputs)`` walks back from the outputs once, checks the graph,
and keeps a flat execution plan. ``apply`` runs the plan in Python, so under
``jax.jit`` the whole graph becomes one traced program with no per-layer
Python at run time. Parameters are ``{layer_name: {weight_name: array}}``.

The model is the graph and its weights (held as ``_weights.ModelWeights``
says). Training lives in the session that ``compile`` makes
(``dagjax.training.fit.FitSession``), files in ``dagjax.io``: ``compile`` /
``fit`` / ``evaluate`` / ``predict`` / ``save`` and friends (``_facade``) only
hand the call over, as Keras's ``Model.save`` calls ``saving_api.save_model``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dagjax import initializers
from dagjax._graph import (
    Node,
    SymbolicTensor,
    adjust_input_rank,
    by_name,
    check_input_shape,
    collect_nodes,
    depth_order,
    entries_like,
    flatten,
    is_nested,
    is_symbolic,
    map_structure,
    mask_spec,
    run_order,
)
from dagjax._naming import default_seed, unique_name
from dagjax.layers import InputLayer, Layer, TensorSpec
from dagjax.layers._autocast import autocast
from dagjax.layers._base import batch_mask_kwargs
from dagjax.layers._input_spec import check_against_spec
from dagjax.layers._keras_scope import collect_losses
from dagjax.layers._keras_style import in_running_call
from dagjax.layers._mask_flow import (
    explicit_arg_masks,
    first_arg_masks,
    input_mask_kwargs,
    run_arg_masks,
    run_output_masks,
    visible_mask,
)
from dagjax.layers._operation import Operation
from dagjax.layers._tunable import activity_penalty, hyperparam_kwargs, regularized
from dagjax.layers._variables import settle_model_layers
from dagjax.model._config import functional_config, functional_from_config, model_to_json
from dagjax.model._deferred import GraphOnFirstData
from dagjax.model._facade import KerasFacade
from dagjax.model._nested_masks import MaskPlan, plan_masks
from dagjax.model._nesting import (
    check_input_structure,
    in_key_order,
    leaves_like,
    output_names,
    paths_and_leaves,
)
from dagjax.model._outputs import requested
from dagjax.model._slicing import on_own_inputs
from dagjax.model._stateless import seed_state, stateless_call
from dagjax.model._subclassed import add_traced_loss, defines_call, trace_call
from dagjax.model._weights import ModelWeights


class NotSymbolicError(TypeError, ValueError):
    """A model's inputs or outputs that are not symbolic tensors: a TypeError, and Keras's ValueError."""


def _check_symbolic(structure: Any, what: str) -> list[SymbolicTensor]:
    """The tensors of ``structure`` (any nest of lists, tuples and dicts) in Keras's flat order (dict keys
    sorted), each checked symbolic."""
    leaves = []
    for path, x in paths_and_leaves(structure):
        if not is_symbolic(x):
            named = isinstance(structure, dict) or is_nested(structure)
            where = what + "".join(f"[{key!r}]" for key in path) if named else what
            raise NotSymbolicError(
                f"All `{what}` values must be KerasTensors: Model {where} must be symbolic tensors (from "
                f"dj.Input or a layer call), got {type(x).__name__}"
                + (f" with shape {x.shape}" if hasattr(x, "shape") else "") + "."
            )
        leaves.append(x)
    return leaves


class Model(GraphOnFirstData, KerasFacade, ModelWeights, Layer):
    """A directed acyclic graph of layers, from ``inputs`` to ``outputs``.

    ``inputs`` and ``outputs`` may each be one symbolic tensor, a list, a
    dict, or any nest of lists, tuples and dicts; ``model.inputs`` and
    ``model.outputs`` flatten them as Keras does (dict keys sorted, at every
    depth). A model is itself a layer: calling it on new tensors nests its
    parameters under its name.
    """

    uses_rng = True
    uses_batch_mask = True
    uses_input_mask = True  # Keras's Functional call(mask=): its Inputs carry the masks (TimeDistributed's)
    autocast = False  # its inputs take its Inputs' dtypes; each of its layers casts for itself
    stop_predicting = False  # set by a callback: predict (which needs no session) stops after this batch
    history = None  # the History of the last fit
    _subclassed = False  # made without inputs/outputs: its graph is traced from call (``_subclassed``)
    _traces_call = True  # a subclass's call(inputs) is traced into its graph, not run by apply
    _traced_losses: list | None = None  # add_loss values while call is being traced
    _loss_tensors: list = []  # symbolic add_loss values the graph computes (read only; set per graph)
    _input_structure: Any = None  # the inputs as the model was built with them (any nest)
    _output_structure: Any = None  # and its outputs
    _input_paths: list = []  # per input of ``inputs``: its path in that structure (Keras's, for errors)

    def __init__(
        self, inputs: Any = None, outputs: Any = None, name: str | None = None, trainable: bool = True,
        **kwargs: Any,
    ) -> None:
        """``Model(inputs, outputs)``: the graph between them. A subclass with a ``call`` and no
        ``inputs``/``outputs`` is subclassed (``_subclassed``): its graph is traced from ``call``."""
        if inputs is None and outputs is None and defines_call(type(self)):
            Layer.__init__(self, name=name, trainable=trainable, **kwargs)
            self._reset_weights()
            self._subclassed = True
            self._layers, self._nodes, self._sublayers, self._weight_specs = [], [], {}, None
            self.inputs, self.outputs, self.input_names, self.output_names = [], [], [], []
            return
        if inputs is None or outputs is None or kwargs:
            raise TypeError(
                "Model(inputs, outputs, name=None, trainable=True) takes the graph's inputs and outputs; "
                "for a subclassed model, define call(self, inputs) in a Model subclass"
                + (f" (unexpected arguments {sorted(kwargs)})." if kwargs else ".")
            )
        super().__init__(name=name if name is not None else unique_name("functional"), trainable=trainable)
        self._build_graph(inputs, outputs)
        self._reset_weights()

    # ------------------------------------------------------------------ subclassed: graph from call
    def _awaiting_graph(self) -> bool:
        return self._subclassed and not self._layers

    def _make_graph(self, inputs: Any) -> None:
        outputs, losses = trace_call(self, inputs)
        self._build_graph(inputs, outputs, losses)
        self._params = self._state = self._jitted_apply = None

    @property
    def saved_class(self) -> type | None:
        """A subclassed model is saved as the functional graph its ``call`` traced: loading needs no code."""
        return Model if self._subclassed else None

    def add_loss(self, loss: Any) -> None:
        """As Keras's: inside a subclassed model's ``call``, a symbolic ``loss`` joins the training loss."""
        if not add_traced_loss(self, loss):
            super().add_loss(loss)

    def _reset_weights(self) -> None:
        """No weights yet (made on first use), no session, no compiled apply."""
        self._params = self._state = None
        self._weights_shared = False  # whether params/state were handed out since the model got them
        self._lent = False  # whether a running fit holds them
        self._jitted_apply = None
        self._session = None

    # ------------------------------------------------------------------ graph
    def _build_graph(self, inputs: Any, outputs: Any, losses: list | tuple = ()) -> None:
        """The graph from ``inputs`` to ``outputs``; ``losses``: symbolic ``add_loss`` values too."""
        _check_symbolic(inputs, "inputs")
        _check_symbolic(outputs, "outputs")
        inputs, outputs = on_own_inputs(inputs, outputs)  # intermediate inputs become Inputs (Keras's)
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        self.inputs = _check_symbolic(inputs, "inputs")
        self.outputs = _check_symbolic(outputs, "outputs")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError(f"Model '{self.name}' was given the same input tensor twice.")
        self._input_structure = inputs
        self._output_structure = outputs

        self._loss_tensors = list(losses)
        nodes, visit_order = collect_nodes(self.inputs, self.outputs + self._loss_tensors)
        self._check_connected(nodes)
        self._layers = depth_order(nodes, visit_order)
        self._check_names()
        self._nodes = [node for node in nodes if not node.is_input]
        # (rng index, node) in Keras's run order. The rng index stays the node's place in the
        # depth-first post-order ``_nodes``, so random layers draw as they always have.
        rng_index = {id(node): i for i, node in enumerate(self._nodes)}
        self._plan = [(rng_index[id(node)], node) for node in run_order(nodes) if not node.is_input]
        self._weight_specs = []
        self._sublayers = {layer.name: layer for layer in self._layers if not isinstance(layer, InputLayer)}

        self._input_paths = [path for path, _ in paths_and_leaves(inputs)]
        if isinstance(inputs, dict) and not is_nested(inputs):
            self.input_names = sorted(inputs)
        else:  # a list's, or a nested structure's (its flat dict keys could repeat): the Inputs' names
            self.input_names = [t.node.layer.name for t in self.inputs]
        self.output_names = output_names(outputs, [t.node.layer.name for t in self.outputs])
        settle_model_layers(self)  # its layers' `weights` read and write this model's params

    def _check_connected(self, nodes: list) -> None:
        """Every tensor a node reads must come from the given inputs."""
        given = {id(t.node) for t in self.inputs}
        for node in nodes:
            if node.is_input and id(node) not in given:
                consumer = next(
                    (n.layer.name for n in nodes if any(t.node is node for t in n.input_tensors)),
                    "the outputs",
                )
                given = [t.node.layer.name for t in self.inputs]
                path = self._output_path_from(node)
                keras_words = "" if path is None else f"Output with path `{path}` is not connected. "
                raise ValueError(
                    f"{keras_words}Graph disconnected: layer '{consumer}' needs input '{node.layer.name}' "
                    f"(shape {node.layer.batch_shape}), which is not among the inputs given to "
                    f"Model '{self.name}': {given}."
                )

    def _output_path_from(self, source: Node) -> str | None:
        """The path (dict keys, list indices: Keras's) of the first output made from ``source``."""
        for path, tensor in paths_and_leaves(self._output_structure):
            stack, seen = [tensor.node], set()
            while stack:
                node = stack.pop()
                if node is source:
                    return ".".join(map(str, path))
                if id(node) not in seen:
                    seen.add(id(node))
                    stack.extend(t.node for t in node.input_tensors)
        return None

    def _check_names(self) -> None:
        owners: dict[str, Layer] = {}
        for layer in self._layers:
            other = owners.setdefault(layer.name, layer)
            if other is not layer:
                raise ValueError(
                    f"The name '{layer.name}' is used by two layers in model '{self.name}' "
                    f"({type(other).__name__} and {type(layer).__name__}). Layer names must be "
                    "unique: they key the parameter pytree."
                )
        direct = {id(layer) for layer in self._layers}
        for layer in self._layers:
            if isinstance(layer, Model):
                for inner in layer._all_layers():
                    if id(inner) in direct:
                        raise ValueError(
                            f"Layer '{inner.name}' is used both directly in model '{self.name}' "
                            f"and inside its nested model '{layer.name}'; sharing a layer across "
                            "that boundary is not supported. Share the nested model instead."
                        )

    def _all_layers(self) -> Iterable[Layer]:
        for layer in self._layers:
            yield layer
            if isinstance(layer, Model):
                yield from layer._all_layers()

    @property
    def layers(self) -> list[Layer]:
        """Every layer, InputLayers included, in Keras's order: by decreasing depth, ties by first visit.

        As in Keras, ops (``x + y``, ``dj.ops.mean(x)``) are graph nodes but not layers: see ``operations``.
        """
        return [layer for layer in self._layers if not isinstance(layer, Operation)]

    @layers.setter
    def layers(self, value: Any) -> None:
        raise AttributeError(
            "`Model.layers` attribute is reserved and should not be used: the graph decides a model's "
            "layers. Store them under another name."
        )

    @property
    def operations(self) -> list[Layer]:
        """Every node's layer or op of the graph, InputLayers included, in ``layers``' order (Keras's).

        ``layers`` and the ops; a Sequential's ``layers`` leave its InputLayer out.
        """
        return list(self._layers)

    @property
    def nodes(self) -> list[Node]:
        """Every layer call in the graph (the InputLayers' aside), each after the calls it reads from.

        The depth-first order the graph was collected in, which random layers' draws follow. ``apply``
        runs them in Keras's order (by decreasing depth), which may put independent calls otherwise.
        """
        return list(self._nodes)

    @property
    def sublayers(self) -> dict[str, Layer]:
        """The model's layers by name, InputLayers left out: its params nest under these names."""
        return self._sublayers

    @property
    def input(self) -> Any:
        """The input tensors in the structure the model was built with (one, a list, a dict, or any nest)."""
        return self._input_structure

    @property
    def input_paths(self) -> list[tuple]:
        """Per tensor of ``inputs``, its place in the structure the model was built with: the dict keys and
        list indices down to it (``()`` for a lone input), as Keras's errors name an input (``0.foo``)."""
        return list(self._input_paths)

    @property
    def output(self) -> Any:
        """The output tensors in the structure the model was built with (one, a list, a dict, or any nest)."""
        return self._output_structure

    @property
    def input_shape(self) -> Any:
        """As Keras: the shapes of ``model.inputs`` as a list, or the one shape."""
        return _unpack_singleton([t.shape for t in self.inputs])

    @property
    def output_shape(self) -> Any:
        """As Keras: the shapes of ``model.outputs`` as a list, or the one shape."""
        return _unpack_singleton([t.shape for t in self.outputs])

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name (an op's too) or by index in ``model.layers``."""
        if (name is None) == (index is None):
            raise ValueError("Pass exactly one of `name` or `index` to get_layer.")
        if index is not None:
            layers = self.layers
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"Index {index} is out of range: model '{self.name}' has {len(layers)} layers."
                )
            return layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No layer named '{name}' in model '{self.name}'. Layers: {[lay.name for lay in self._layers]}."
        )

    # ------------------------------------------------------------------ as a layer
    def check_input(self, *input_specs: Any) -> None:
        """One argument, matched to the model's inputs by name or order and checked against their shapes."""
        if len(input_specs) != 1:
            raise self.input_error(f"takes one argument (a tensor, list or dict), got {len(input_specs)}")
        self.flat_inputs(input_specs[0], symbolic=True)

    def output_mask_specs(self, node: Node, specs: tuple, mask_of: Any = visible_mask) -> list | None:
        """The masks its outputs carry: made inside it (``Embedding(mask_zero=True)``...), or carried
        through its layers from the masks of the tensors it is called on, as Keras passes them on."""
        given = self.input_masks_of(first_arg_masks(node, mask_of))
        if any(m is not None for m in given):
            masks = self._mask_plan(given).outputs
        else:
            masks = [mask_spec(t) for t in self.outputs]
        return masks if any(m is not None for m in masks) else None

    def input_masks_of(self, masks: Any) -> list:
        """Per input (``model.inputs`` order), its mask in ``masks``, shaped as the argument a call gets: the
        nest the model was built with (``[{"s": mask}, None]``), a list in order, a dict by name, or one."""
        if is_nested(self._input_structure) and (entries := entries_like(self._input_structure, masks)):
            return entries
        if isinstance(masks, dict):
            return [masks.get(name) for name in self.input_names]
        if isinstance(masks, (list, tuple)) and len(self.inputs) > 1:
            return list(masks)
        return [masks[0] if isinstance(masks, (list, tuple)) else masks]

    def _mask_plan(self, input_masks: list) -> MaskPlan:
        """The mask flow inside this model for inputs carrying these masks (specs or arrays), made once."""
        key = tuple(m is not None for m in input_masks)
        plans = self.__dict__.setdefault("_mask_plans", {})
        if key not in plans:
            specs = [None if m is None else TensorSpec(m.shape, m.dtype) for m in input_masks]
            plans[key] = plan_masks(self, specs)
        return plans[key]

    def compute_output_spec(self, *input_specs: Any) -> Any:
        """The specs of the model's own output tensors, which the graph already knows; traced (as any
        layer's) only for inputs more specific than its Inputs (a batch size; an image model of
        ``(None, None, 3)`` called on 71x71 images: its feature maps' sizes), as Keras's graph run gives."""
        given = self.input_entries(input_specs[0]) if len(input_specs) == 1 else []
        if any(x is not None and tuple(x.shape) != t.shape for x, t in zip(given, self.inputs)):
            return super().compute_output_spec(*input_specs)
        return map_structure(lambda t: TensorSpec(t.shape, t.dtype), self._output_structure)

    # ------------------------------------------------------------------ pure functions
    def init(self, rng: jax.Array | None = None, *input_specs: Any) -> tuple[dict, dict]:
        """Fresh ``(params, state)``. When every initializer draws with numpy (the built-in ones do),
        the weights are made on the host, compiling nothing; otherwise one compiled program makes them.
        """
        if input_specs:  # a model with no graph yet builds from them
            self._build_for_data(input_specs[0])
        self._require_graph()
        if rng is None:
            rng = jax.random.key(default_seed())
        if all(isinstance(w.initializer, initializers.Initializer) for w in _weight_specs_under(self)):
            return self.init_weights(rng)
        return jax.jit(self.init_weights)(rng)

    def apply(
        self,
        params: dict,
        state: dict,
        inputs: Any,
        training: bool = False,
        rng: jax.Array | None = None,
        mask: jax.Array | None = None,
        outputs: str | list[str] | None = None,
        input_mask: Any = None,
    ) -> tuple[Any, dict]:
        """``(outputs, new_state)``. Pure: use it under ``jit``, ``grad`` and ``vmap``.

        ``inputs``: a list in ``model.inputs`` order, a dict keyed by input
        name, a bare array for a single-input model, or the nest of lists and
        dicts the model was built with. ``outputs`` have the
        structure the model was built with, but a list or tuple of one output
        comes back as that one array (Keras's ``unpack_singleton``). ``rng``
        feeds Dropout and other random layers when ``training=True``.
        ``mask`` (batch,) marks the padding rows of a padded batch (0.0) for
        layers with batch statistics (see ``apply_with_penalty``). ``outputs``: an output name (that
        array alone comes back) or a list of names, to compute only the layers those need.
        ``input_mask``: the Keras masks of ``(inputs,)``, which its Inputs then carry (a wrapper's call).
        """
        if input_mask is not None:
            input_masks = self.input_masks_of(input_mask[0])
            return self.apply_masked(params, state, inputs, training, rng, mask, outputs=outputs,
                                     input_masks=input_masks)[:2]
        result, new_state, _ = self.apply_with_penalty(
            params, state, inputs, training, rng, mask, outputs=outputs
        )
        return result, new_state

    def apply_with_penalty(
        self,
        params: dict,
        state: dict,
        inputs: Any,
        training: bool = False,
        rng: jax.Array | None = None,
        mask: jax.Array | None = None,
        hyperparams: dict | None = None,
        outputs: str | list[str] | None = None,
    ) -> tuple[Any, dict, Any]:
        """``(outputs, new_state, activity_penalty)``: ``apply_masked`` without the output masks."""
        return self.apply_masked(params, state, inputs, training, rng, mask, hyperparams, outputs)[:3]

    def apply_masked(
        self,
        params: dict,
        state: dict,
        inputs: Any,
        training: bool = False,
        rng: jax.Array | None = None,
        mask: jax.Array | None = None,
        hyperparams: dict | None = None,
        outputs: str | list[str] | None = None,
        input_masks: list | None = None,
    ) -> tuple[Any, dict, Any, list]:
        """``(outputs, new_state, activity_penalty, output_masks)``: apply plus the activity-regularizer sum.

        ``output_masks`` has one entry per output tensor (of ``model.outputs``, or
        of the requested ``outputs``): its Keras mask (``(batch, time)`` bools,
        which weigh its loss and metrics) or None.

        ``mask`` (batch,) marks real rows (1.0) and padding rows (0.0): padding
        rows are left out of the activity penalty and of its batch size, and
        layers with ``uses_batch_mask`` (BatchNormalization) get it to leave
        them out of their batch statistics. ``None``: every row is real.
        ``hyperparams``, shaped as :meth:`tunable`, gives traced values (Dropout
        rates, regularizer factors) in place of the layers' config. ``outputs``: as in :meth:`apply`.
        ``input_masks``: per input, the Keras mask it carries (a model nested in another, called on masked
        tensors) or None.
        """
        with collect_losses() as added:  # Keras-style layers' add_loss values
            result, new_state, penalty, output_masks = self._run_plan(
                params, state, inputs, training, rng, mask, hyperparams, outputs, input_masks
            )
        return result, new_state, penalty + added.total(), output_masks

    def _run_plan(
        self, params: dict, state: dict, inputs: Any, training: bool, rng: Any, mask: Any, hyperparams: Any,
        outputs: str | list[str] | None, input_masks: list | None = None,
    ) -> tuple[Any, dict, Any, list]:
        """The plan's layers in order: ``apply_masked`` without the ``add_loss`` values."""
        plan, structure = self._plan, self._output_structure
        if outputs is not None:
            plan, structure = requested(self, outputs)
        values: dict[int, Any] = dict(zip(map(id, self.inputs), self.flat_inputs(inputs)))
        masks: dict[int, Any] = {}  # the Keras masks of the tensors that carry one
        flow = None  # the recorded mask flow, unless inputs carry masks (``_nested_masks``)
        if input_masks is not None and any(m is not None for m in input_masks):
            flow = self._mask_plan(input_masks)
            masks = {id(t): m for t, m in zip(self.inputs, input_masks) if m is not None}
        new_state = dict(state)
        penalty = 0.0  # a Python number until a regularizer adds to it: no ops traced for none
        for index, node in plan:
            layer = node.layer
            args = map_structure(lambda t: values[id(t)] if is_symbolic(t) else t, node.args)
            arg_masks = explicit_arg_masks(node, values)
            if arg_masks is None:
                arg_masks = run_arg_masks(node, masks, None if flow is None else flow.seen[id(node)])
            layer_rng = None
            if rng is not None and layer.uses_rng:
                layer_rng = jax.random.fold_in(rng, index)
            layer_params = params.get(layer.name, {})
            layer_state = new_state.get(layer.name, {})
            given = (hyperparams or {}).get(layer.name)
            layer_training = node.kwargs.get("training", training)  # a call's training=True/False fixes it
            if isinstance(layer, Model):
                inner_input_masks = None if arg_masks is None else layer.input_masks_of(arg_masks[0])
                out, layer_state, inner_penalty, inner_masks = layer.apply_masked(
                    layer_params, layer_state, *args, training=layer_training, rng=layer_rng, mask=mask,
                    hyperparams=given, input_masks=inner_input_masks,
                )
                penalty = penalty + inner_penalty
            else:
                layer_params, args = autocast(layer, layer_params, args)
                out, layer_state = layer.apply(
                    layer_params, layer_state, *args, training=layer_training, rng=layer_rng,
                    **batch_mask_kwargs(layer, mask), **hyperparam_kwargs(layer, given),
                    **input_mask_kwargs(layer, arg_masks), **_call_options(node, values),
                )
            if layer_state:
                new_state[layer.name] = layer_state
            leaves = jax.tree_util.tree_leaves(out)
            if layer.activity_regularizer is not None:
                factors = (given or {}).get("activity_regularizer")
                regularizer = regularized(layer.activity_regularizer, factors)
                penalty = penalty + activity_penalty(regularizer, leaves, mask)
            for tensor, value in zip(node.output_tensors, leaves):
                values[id(tensor)] = value
            node_masks = node.output_masks if flow is None else flow.output_masks[id(node)]
            if node_masks is not None:
                nested = isinstance(layer, Model)
                made = inner_masks if nested else run_output_masks(layer, node, args, arg_masks, node_masks)
                for tensor, value in zip(node.output_tensors, made):
                    if value is not None:
                        masks[id(tensor)] = value
        if outputs is None:
            for tensor in self._loss_tensors:
                penalty = penalty + jnp.sum(jnp.asarray(values[id(tensor)], jnp.float32))
        result = map_structure(lambda t: values[id(t)], structure)
        tensors = self.outputs if outputs is None else flatten(structure)
        output_masks = [masks.get(id(t)) for t in tensors]
        return _unpack_singleton(result), new_state, penalty, output_masks

    def flat_inputs(self, inputs: Any, symbolic: bool = False) -> list:
        """``inputs`` (as ``input_entries`` takes them) as a list in ``model.inputs`` order.

        Each is checked against its Input's shape; arrays (``symbolic=False``) are also given the
        Input's rank and dtype, as ``apply`` takes them. ``symbolic=True``: tensors or specs, only checked.
        """
        if symbolic:  # a model with no graph yet builds from them
            self._build_for_data(inputs)
        self._require_graph()
        names = self.input_names
        flat = self.input_entries(inputs)
        declared = self.__dict__.get("input_spec")
        if declared is not None and not symbolic:  # a symbolic call was checked by check_input
            check_against_spec(declared, [x if x is None else jnp.asarray(x) for x in flat], self.name)
        checked = []
        for name, tensor, x, path in zip(names, self.inputs, flat, self._input_paths):
            if x is None:  # only an optional Input may be given None (Keras 3): its layers get None
                if not tensor.node.layer.optional:
                    raise ValueError(
                        f"Input '{name}' of model '{self.name}' was given None, but it is not optional "
                        "(Input(..., optional=True) makes it so)."
                    )
                checked.append(None)
                continue
            if getattr(x, "shape", None) is None:
                x = jnp.asarray(x)
            if not symbolic:
                x = adjust_input_rank(x, tensor.shape)
            check_input_shape(name, tensor.shape, x.shape, self.name, path=path)
            if not symbolic and np.dtype(x.dtype) != tensor.dtype:
                x = jnp.asarray(x).astype(tensor.dtype)
            checked.append(x)
        return checked

    def input_entries(self, inputs: Any, what: str = "inputs") -> list:
        """``inputs`` as a list in ``model.inputs`` order, unchecked: in the structure the model was built
        with (any nest; a list and a tuple alike), a list in order, a dict by input name, or one array."""
        if is_nested(self._input_structure):
            leaves = leaves_like(self._input_structure, inputs)
            if leaves is not None:
                return leaves
        return by_name(inputs, self.input_names, what, kind="input", arrays=True, model=self.name)

    def check_input_structure(self, inputs: Any) -> None:
        """Keras's warning, or error, for data given in another structure than the model's inputs (a list to
        a model built on a dict): model calls on arrays, ``fit``, ``evaluate`` and ``predict`` check;
        the pure ``apply`` takes a list in ``model.inputs`` order silently."""
        check_input_structure(self._input_structure, inputs, self.name, self.input_names)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """On symbolic tensors: nest this model in a graph. On arrays: run it with ``model.params``."""
        leaves = jax.tree_util.tree_leaves(args, is_leaf=is_symbolic)
        if leaves and not any(is_symbolic(x) for x in leaves) and not in_running_call():
            if len(args) != 1:
                raise TypeError(f"Model '{self.name}' takes one argument (a tensor, list or dict).")
            training = kwargs.pop("training", False)
            if kwargs:
                raise TypeError(f"Unexpected keyword arguments {sorted(kwargs)}.")
            self._build_for_data(args[0])
            self.check_input_structure(args[0])
            if self._jitted_apply is None:
                self._jitted_apply = jax.jit(self.apply, static_argnames="training")
            outputs, _ = self._jitted_apply(*self._weights(), args[0], training=training)
        else:
            outputs = super().__call__(*args, **kwargs)
        # jax's trees sort a dict's keys; Keras's call keeps the model's order
        return in_key_order(_unpack_singleton(self._output_structure), outputs)

    def tunable(self) -> dict:
        """Its layers' tunable trees (``layers._tunable``) by layer name, those with none left out."""
        trees = {name: layer.tunable() for name, layer in self._sublayers.items()}
        return {name: tree for name, tree in trees.items() if tree}

    @property
    def variables(self) -> list:
        """``weights`` and, for a model with random layers, its seed state (Keras's ``variables``)."""
        return self.weights + seed_state(self)

    @property
    def non_trainable_variables(self) -> list:
        """``non_trainable_weights`` and, for a model with random layers, its seed state, as Keras."""
        return self.non_trainable_weights + seed_state(self)

    def stateless_call(
        self,
        trainable_variables: list,
        non_trainable_variables: list,
        inputs: Any,
        training: bool = False,
        return_losses: bool = False,
    ) -> tuple:
        """Keras's JAX-backend pure call over variable lists: ``(outputs, non_trainable values)``, and
        the forward pass's losses with ``return_losses`` (``model/_stateless.py``); ``apply`` is the
        pytree form."""
        return stateless_call(self, trainable_variables, non_trainable_variables, inputs, training,
                              return_losses)

    def count_params(self) -> int:
        """The sum of its layers' counts (nested models too), from the weight specs: no arrays are made."""
        return sum(layer.count_params() for layer in self._sublayers.values())

    def get_config(self) -> dict:
        """Keras's model config: the layers with their calls, and the input and output layers (JSON data)."""
        return functional_config(self)

    def to_json(self, **kwargs: Any) -> str:
        """The model's class and config as a JSON string (Keras's); ``dj.models.model_from_json`` reads it."""
        return model_to_json(self, **kwargs)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Model:
        """The model a ``get_config()`` describes, with fresh weights (as ``keras.Model.from_config``)."""
        return functional_from_config(cls, config, custom_objects)

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"<{kind} name={self.name!r} inputs={self.input_names} outputs={self.output_names}>"


def _call_options(node: Node, values: dict) -> dict:
    """The node's keyword options for ``apply``, each symbolic tensor replaced by its value."""
    options = {key: value for key, value in node.kwargs.items() if key not in ("training", "mask")}
    return map_structure(lambda v: values[id(v)] if is_symbolic(v) else v, options) if options else {}


def _unpack_singleton(structure: Any) -> Any:
    """A list or tuple of one as its one item, as Keras's Functional returns its outputs."""
    if isinstance(structure, (list, tuple)) and len(structure) == 1:
        return structure[0]
    return structure


def _weight_specs_under(layer: Layer) -> Iterable:
    """Every weight spec of ``layer`` and of its sublayers, nested models included."""
    yield from layer.weight_specs
    for sub in layer.sublayers.values():
        yield from _weight_specs_under(sub)

