"""Layers run in Keras's order: it decides the state a shared stateful layer ends with.

Keras's ``Functional`` runs its nodes by decreasing depth, ties in
``map_graph``'s order (``keras/src/ops/function.py``), and ``TimeDistributed``
calls its layer once per time step (``keras/src/layers/rnn/time_distributed.py``).
A BatchNormalization layer called several times in one training step keeps
the moving statistics of its last update, so each test compares those with
Keras 3 after one training-mode call.
"""

import jax
import keras
import numpy as np
import pytest

import dagjax as dj

WIDTH = 2


def _train_once_both(build, data):
    """Outputs and weights after one training-mode call, in Keras and in dagjax from Keras's weights."""
    kmodel, model = build(keras), build(dj)
    model.set_weights(kmodel.get_weights())
    out, model.state = model.apply(model.params, model.state, data, training=True)
    expected = kmodel(data, training=True)
    return (out, model.get_weights()), (expected, kmodel.get_weights())


def _assert_same(got, expected):
    for g, e in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-5, atol=1e-5)


def _assert_match_keras(build, data):
    (out, weights), (expected_out, expected_weights) = _train_once_both(build, data)
    _assert_same(out, expected_out)
    _assert_same(weights, expected_weights)


def shared_bn_two_branches(lib):
    """The first output reads only the second call of ``bn``: a walk from the outputs meets it first."""
    a, b = lib.Input((WIDTH,), name="a"), lib.Input((WIDTH,), name="b")
    bn = lib.layers.BatchNormalization(momentum=0.5, name="bn")
    ha, hb = bn(a), bn(b)
    out_b = lib.layers.Dense(2, name="out_b")(hb)
    return lib.Model([a, b], [out_b, lib.layers.add([ha, hb], name="out_ab")])


def _inputs(n, seed):
    """``n`` batches with different means, so every BatchNormalization call sees other statistics."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(4, WIDTH)) + 3 * i - 2).astype("float32") for i in range(n)]


def test_shared_batch_norm_updates_in_keras_order():
    _assert_match_keras(shared_bn_two_branches, _inputs(2, 0))


def random_dag(seed):
    """``(build, n_inputs)``: ``build(lib)`` makes one random DAG in Keras or in dagjax.

    Shared BatchNormalizations, fan-in, fan-out and a shared nested model; every
    layer is named, so both libraries build the same graph.
    """
    rng = np.random.default_rng(seed)
    n_inputs = int(rng.integers(1, 4))
    steps = []
    for i in range(int(rng.integers(4, 10))):
        kind = str(rng.choice(["bn", "bn", "dense", "add", "concat", "nested"]))
        steps.append((kind, int(rng.integers(0, 3)), rng.integers(0, n_inputs + i, size=2).tolist()))
    n_tensors = n_inputs + len(steps)
    outputs = [n_tensors - 1, *rng.integers(n_inputs, n_tensors, size=int(rng.integers(0, 3))).tolist()]

    def build(lib):
        L = lib.layers
        inputs = [lib.Input((WIDTH,), name=f"in{i}") for i in range(n_inputs)]
        bns = [L.BatchNormalization(momentum=0.5, name=f"bn{i}") for i in range(3)]
        inner_in = lib.Input((WIDTH,), name="inner_in")
        inner_h = L.Dense(WIDTH, name="inner_dense")(inner_in)
        inner_out = L.BatchNormalization(momentum=0.5, name="inner_bn")(inner_h)
        nested = lib.Model(inner_in, inner_out, name="nested")
        tensors = list(inputs)
        for i, (kind, which, (p, q)) in enumerate(steps):
            x, y = tensors[p], tensors[q]
            if kind == "bn":
                out = bns[which](x)
            elif kind == "dense":
                out = L.Dense(WIDTH, name=f"dense{i}")(x)
            elif kind == "add":
                out = L.add([x, y], name=f"add{i}")
            elif kind == "concat":
                out = L.Dense(WIDTH, name=f"dense{i}")(L.concatenate([x, y], name=f"concat{i}"))
            else:
                out = nested(x)
            tensors.append(out)
        return lib.Model(inputs, [tensors[i] for i in outputs])

    return build, n_inputs


@pytest.mark.parametrize("seed", range(30))
def test_random_dags_run_in_keras_node_order(seed):
    """The whole order, ties included, as Keras's ``_run_through_graph`` walks its ``nodes_by_depth``."""
    build, _ = random_dag(seed)
    kmodel, model = build(keras), build(dj)
    by_depth = kmodel._nodes_by_depth
    expected = [
        (n.operation.name, n.operation._inbound_nodes.index(n))
        for depth in sorted(by_depth, reverse=True) for n in by_depth[depth] if not n.is_input
    ]
    assert [(n.layer.name, n.layer._inbound_nodes.index(n)) for _, n in model._plan] == expected


@pytest.mark.parametrize("seed", [6, 41, 51, 152, 177, 194])  # DAGs where the order changes the state
def test_random_dags_with_shared_state_match_keras(seed):
    build, n_inputs = random_dag(seed)
    _assert_match_keras(build, _inputs(n_inputs, seed))


def time_distributed_bn(lib, time=3):
    x = lib.Input((time, WIDTH))
    return lib.Model(x, lib.layers.TimeDistributed(lib.layers.BatchNormalization(momentum=0.5))(x))


def time_distributed_model(lib):
    """The wrapped layer is a model with BatchNormalization inside."""
    inner_in = lib.Input((WIDTH,))
    inner = lib.Model(inner_in, lib.layers.BatchNormalization(momentum=0.5)(lib.layers.Dense(3)(inner_in)))
    x = lib.Input((3, WIDTH))
    return lib.Model(x, lib.layers.TimeDistributed(inner)(x))


@pytest.mark.parametrize(
    "build",
    [time_distributed_bn, lambda lib: time_distributed_bn(lib, time=None), time_distributed_model],
    ids=["bn", "bn_unknown_time", "model"],
)
def test_time_distributed_batch_norm_takes_each_step_in_turn(build):
    """Per-step batch statistics, and one moving-statistics update per step, as Keras's loop over time."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(4, 3, WIDTH)) + np.arange(3)[:, None] * 2).astype("float32")  # step t: mean ~2t
    _assert_match_keras(build, x)
