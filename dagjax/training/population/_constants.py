"""Raw optax transformations whose members differ only in numbers: their constants lifted into the state.

``optax.adam(1e-3)`` and ``optax.adam(3e-3)`` trace to the same program
except for the float literals the learning rate became. Read from each
member's traced ``update``, those literals say whether members can share one
program (:func:`optimizer_program`: the program with its float literals left
out, and the literals in order) and which numbers differ. :func:`lift` then
gives the first member's transformation with the differing literals read
from its state, as ``optax.inject_hyperparams`` keeps its arguments there,
so stacking the members' states stacks their numbers and one ``vmap``-ped
step reads each member's own.

Literals are read in the update's own program and in the ``jit`` calls it
makes (which :func:`lift` inlines); a literal inside any other nested
program (a loop, a branch) stays part of what must match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.extend import core as jex

PREFIX = "constant_"


def _is_lifted(atom: Any) -> bool:
    """A scalar float literal: a number the user's Python code put into the program."""
    return isinstance(atom, jex.Literal) and np.ndim(atom.val) == 0 and jnp.issubdtype(
        atom.aval.dtype, jnp.floating
    )


def _inlined(eqn: Any) -> bool:
    """A ``jit`` call, whose body counts as part of the program around it."""
    return eqn.primitive.name in ("jit", "pjit") and isinstance(eqn.params.get("jaxpr"), jex.ClosedJaxpr)


def _const_key(value: Any) -> str:
    array = np.asarray(value)
    return f"{array.dtype}{array.shape}:{hashlib.sha1(array.tobytes()).hexdigest()}"


def _describe(jaxpr: Any, consts: Sequence, names: dict, literals: list[float]) -> Iterator[str]:
    """The program as text with each float literal a ``?`` (appended to ``literals`` in order)."""
    name = lambda var: names.setdefault(id(var), f"v{len(names)}")
    yield "consts " + " ".join(f"{name(v)}={_const_key(c)}" for v, c in zip(jaxpr.constvars, consts))
    yield "in " + " ".join(f"{name(v)}:{v.aval.str_short()}" for v in jaxpr.invars)
    for eqn in jaxpr.eqns:
        args = []
        for atom in eqn.invars:
            if _is_lifted(atom):
                literals.append(float(atom.val))
                args.append(f"?{atom.aval.str_short()}")
            elif isinstance(atom, jex.Literal):
                args.append(f"{_const_key(atom.val)}")
            else:
                args.append(name(atom))
        outs = " ".join(name(v) for v in eqn.outvars)
        if _inlined(eqn):
            body = eqn.params["jaxpr"]
            inner = dict(zip(map(id, body.jaxpr.invars), args))
            yield f"{outs} = inline({' '.join(args)})"
            yield from _describe(body.jaxpr, body.consts, {**names, **inner}, literals)
            continue
        params = sorted((k, str(v)) for k, v in eqn.params.items())
        yield f"{outs} = {eqn.primitive.name}{params}({' '.join(args)})"
    yield "out " + " ".join(repr(v.val) if isinstance(v, jex.Literal) else name(v) for v in jaxpr.outvars)


def _abstract(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)


def _traced_update(tx: optax.GradientTransformation, updates: Any, state: Any, params: Any) -> tuple:
    """``(program, output tree)`` of ``tx.update(updates, state, params)``, as a train step calls it."""
    closed, shapes = jax.make_jaxpr(lambda g, s, p: tx.update(g, s, p), return_shape=True)(
        *_abstract((updates, state, params))
    )
    return closed, jax.tree.structure(shapes)


def _text(closed: jex.ClosedJaxpr) -> tuple[str, list[float]]:
    literals: list[float] = []
    return "\n".join(_describe(closed.jaxpr, closed.consts, {}, literals)), literals


def optimizer_program(tx: optax.GradientTransformation, params: Any) -> tuple[str, dict[str, float]]:
    """``(program, constants)``: ``tx``'s init and update as text without their float literals, and those.

    Two transformations with the same program train alike but for the
    constants (named ``constant_<position>``), so they can share one (:func:`lift`).
    """
    params = _abstract(params)
    init = jax.make_jaxpr(tx.init)(params)
    text, literals = _text(_traced_update(tx, params, jax.eval_shape(tx.init, params), params)[0])
    return f"{init}\n{text}", {f"{PREFIX}{i}": value for i, value in enumerate(literals)}


def _evaluate(jaxpr: Any, consts: Sequence, args: Sequence, lifted: Callable[[int], Any], seen: list) -> list:
    """``jaxpr`` run on ``args``, its ``n``-th float literal ``lifted(n)`` where that is not None.

    ``seen`` collects the literals met so far (in :func:`_describe`'s order).
    """
    env: dict = {}
    read = lambda atom: atom.val if isinstance(atom, jex.Literal) else env[atom]
    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        values = []
        for atom in eqn.invars:
            if _is_lifted(atom):
                number = lifted(len(seen))
                seen.append(atom)
                values.append(read(atom) if number is None else number.astype(atom.aval.dtype))
            else:
                values.append(read(atom))
        if _inlined(eqn):
            body = eqn.params["jaxpr"]
            outs = _evaluate(body.jaxpr, body.consts, values, lifted, seen)
        else:
            with eqn.ctx.manager:
                outs = eqn.primitive.bind(*values, **eqn.primitive.get_bind_params(eqn.params))
            outs = outs if eqn.primitive.multiple_results else [outs]
        env.update((v, o) for v, o in zip(eqn.outvars, outs) if not isinstance(v, jex.DropVar))
    return [read(v) for v in jaxpr.outvars]


def lift(tx: optax.GradientTransformation, params: Any, names: Sequence[str]) -> optax.GradientTransformation:
    """``tx`` with the float literals ``names`` (``constant_<position>``) read from its state.

    The state is an ``optax.InjectHyperparamsState`` whose ``hyperparams``
    hold the lifted numbers (``tx``'s own to start with), so the tools that
    set a population's optimizer values set these too.
    """
    program, constants = optimizer_program(tx, params)
    positions = {int(name[len(PREFIX):]): name for name in names}

    def init(params: Any) -> optax.InjectHyperparamsState:
        numbers = {name: jnp.asarray(constants[name], jnp.float32) for name in names}
        count = jnp.zeros([], jnp.int32)
        return optax.InjectHyperparamsState(count=count, hyperparams=numbers, inner_state=tx.init(params))

    def update(updates: Any, state: optax.InjectHyperparamsState, params: Any = None) -> tuple:
        closed, out_tree = _traced_update(tx, updates, state.inner_state, params)
        if not program.endswith(_text(closed)[0]):
            raise ValueError("The optimizer traced to another program than its members were matched on.")
        numbers = lambda n: state.hyperparams[positions[n]] if n in positions else None
        flat = jax.tree.leaves((updates, state.inner_state, params))
        outs = _evaluate(closed.jaxpr, closed.consts, flat, numbers, [])
        new_updates, new_inner = jax.tree.unflatten(out_tree, outs)
        return new_updates, state._replace(inner_state=new_inner)

    return optax.GradientTransformation(init, update)
