"""Property: for random DAGs, the compiled model equals a naive node-by-node interpreter."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import dagjax as dj
from dagjax import layers

WIDTH = 3


def naive_outputs(model, params, inputs):
    """Evaluate each output by recursion over its producers, memoised; no execution plan."""
    values = {id(t): x for t, x in zip(model.inputs, inputs)}

    def evaluate(tensor):
        if id(tensor) not in values:
            node = tensor.node
            args = [
                jax.tree_util.tree_map(evaluate, a, is_leaf=lambda v: isinstance(v, dj.SymbolicTensor))
                for a in node.args
            ]
            layer_params = params.get(node.layer.name, {})
            if isinstance(node.layer, dj.Model):
                out = naive_outputs(
                    node.layer, layer_params, list(args[0]) if isinstance(args[0], list) else [args[0]]
                )
            else:
                out, _ = node.layer.apply(layer_params, {}, *args)
            for t, v in zip(node.output_tensors, jax.tree_util.tree_leaves(out)):
                values[id(t)] = v
        return values[id(tensor)]

    return [evaluate(t) for t in model.outputs]


def sub_model():
    x = dj.Input((WIDTH,))
    h = layers.Dense(WIDTH, activation="tanh")(x)
    return dj.Model(x, layers.add([x, h]))


@st.composite
def random_dag(draw):
    """Inputs, then steps that each read one or two earlier tensors (fan-in and fan-out)."""
    n_inputs = draw(st.integers(1, 3))
    inputs = [dj.Input((WIDTH,)) for _ in range(n_inputs)]
    tensors = list(inputs)
    shared = []
    nested = None
    for _ in range(draw(st.integers(1, 8))):
        pick = lambda: tensors[draw(st.integers(0, len(tensors) - 1))]  # noqa: E731
        kind = draw(st.sampled_from(["dense", "shared", "activation", "add", "concat", "nested"]))
        if kind == "dense":
            out = layers.Dense(WIDTH)(pick())
        elif kind == "shared":
            if not shared or draw(st.booleans()):
                shared.append(layers.Dense(WIDTH, activation="relu"))
            out = shared[draw(st.integers(0, len(shared) - 1))](pick())
        elif kind == "activation":
            out = layers.Activation(draw(st.sampled_from(["relu", "tanh", "sigmoid"])))(pick())
        elif kind == "add":
            out = layers.add([pick(), pick()])
        elif kind == "concat":
            out = layers.Dense(WIDTH)(layers.concatenate([pick(), pick()]))
        else:
            nested = nested or sub_model()
            out = nested(pick())
        tensors.append(out)
    n_outputs = draw(st.integers(1, 2))
    outputs = [tensors[-1]] + [
        tensors[draw(st.integers(n_inputs, len(tensors) - 1))] for _ in range(n_outputs - 1)
    ]
    return inputs, outputs


@settings(max_examples=25, deadline=None)
@given(dag=random_dag(), seed=st.integers(0, 2**16))
def test_compiled_model_matches_naive_interpreter(dag, seed):
    dj.clear_session()
    inputs, outputs = dag
    model = dj.Model(inputs, outputs)
    params, state = model.init(jax.random.key(seed))
    data = [jnp.asarray(np.random.default_rng(seed).normal(size=(2, WIDTH)), jnp.float32) for _ in inputs]
    compiled, _ = jax.jit(model.apply)(params, state, data)
    expected = naive_outputs(model, params, data)
    for got, want in zip(jax.tree_util.tree_leaves(compiled), expected):  # one output comes back bare
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    shared_layers = [
        lay for lay in model.layers if len(lay._inbound_nodes) > 1 and not isinstance(lay, dj.Model)
    ]
    for layer in shared_layers:
        assert layer.name in params and set(params[layer.name]) == {"kernel", "bias"}
