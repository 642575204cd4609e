"""For every optimizer of the catalogue: under a mesh with explicit axes, the state ``init``
makes has the parameters' sharding, and ``update`` returns a state of the same types (so a
``lax.scan`` whose carry is ``tx.init(params)`` type-checks). Prints one JSON line:
name -> "ok" or the first mismatch. Run with 8 simulated CPU devices."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_catalogue import CATALOGUE


def _loss(params, **extras) -> jax.Array:
    """The loss; it takes (and ignores) the extras meant for other optimizers, since a line
    search passes every extra keyword argument on to its value_fn."""
    del extras
    return sum(jnp.sum(x**2) / 2 for x in jax.tree.leaves(params))


def _extra_args(params) -> dict:
    """What the optimizers that need more than gradients ask for (polyak, lbfgs, sophia):
    the loss, its gradient at ``params`` (``params`` itself) and the loss function."""
    return {"value": _loss(params), "grad": params, "value_fn": _loss, "obj_fn": _loss}


def check(make) -> str:
    mesh = jax.make_mesh((8,), ("x",), axis_types=(jax.sharding.AxisType.Explicit,))
    sharding = jax.sharding.NamedSharding(mesh, jax.P(None, "x"))
    with jax.set_mesh(mesh):
        params = {"w": jnp.ones((2, 8, 4), jnp.float32, out_sharding=sharding)}
        tx = make(0.1)
        state0 = tx.init(params)
        _, state1 = tx.update(params, state0, params, **_extra_args(params))
        type0 = jax.tree.map(jax.typeof, state0)
        type1 = jax.tree.map(jax.typeof, state1)
        if type0 != type1:
            bad = [
                f"{jax.tree_util.keystr(p)}: {a} -> {b}"
                for (p, a), b in zip(
                    jax.tree_util.tree_flatten_with_path(type0)[0],
                    jax.tree.leaves(type1),
                    strict=False,
                )
                if a != b
            ]
            return "init/update types differ: " + "; ".join(bad[:3])

        def body(carry, _):
            p, s = carry
            _, s = tx.update(p, s, p, **_extra_args(p))
            return (p, s), None

        jax.lax.scan(body, (params, tx.init(params)), length=2)
    return "ok"


results = {}
for name, make in CATALOGUE.items():
    try:
        results[name] = check(make)
    except Exception as e:  # reported per optimizer, not fatal for the others
        results[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
print(json.dumps(results))
