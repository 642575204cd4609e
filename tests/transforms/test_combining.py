"""Partition and named_chain (optim/transforms/_combining.py).

Parity follows tests/test_optax_parity.py: 200 float32 steps of ``convex_loss``, ours against
optax, both given the same Python-float hyperparameters (bound 1e-6: the same arithmetic, only
XLA's fusion may differ).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from conftest import jitted_update, relative_deviation, trajectory
from parity_table import LABELS, MASK

import optim
from optim.transforms._combining import _path_parts

OURS = optim


def _layers_params():
    return {
        "dense": {"w": jnp.ones((2, 3)), "b": jnp.ones(3), "w_norm": jnp.ones(3)},
        "layers": [{"kernel": jnp.ones((3, 3)), "bias": jnp.ones(3)} for _ in range(2)],
        "activation": jax.nn.relu,
        "depth": 2,
    }


def test_partition_regex_labels_apply_the_right_transform():
    params = _layers_params()
    tx = OURS.partition(
        {"decay": OURS.scale(2.0), "no_decay": OURS.scale(3.0), "bias": OURS.scale(5.0)},
        {"decay": r".*kernel|.*w$", "bias": r".*/b(ias)?", "no_decay": r".*"},
    )
    state = tx.init(params)
    grads = jax.tree.map(lambda x: jnp.ones_like(x) if isinstance(x, jax.Array) else None, params)
    updates, _ = tx.update(grads, state, params)
    factors = {
        "dense/w": 2.0,  # .*w$
        "dense/b": 5.0,
        "dense/w_norm": 3.0,  # whole-path match: w$ does not end it, b(ias)? does not match
        "layers/0/kernel": 2.0,
        "layers/0/bias": 5.0,
        "layers/1/kernel": 2.0,
        "layers/1/bias": 5.0,
    }
    got = {
        "/".join(_path_parts(path)): float(leaf[0] if leaf.ndim == 1 else leaf[0, 0])
        for path, leaf in jax.tree_util.tree_flatten_with_path(updates)[0]
    }
    assert got == factors
    assert updates["activation"] is None and updates["depth"] is None


def test_partition_first_matching_pattern_wins():
    params = {"a": {"kernel": jnp.ones(2)}}
    first = OURS.partition(
        {"x": OURS.scale(2.0), "y": OURS.scale(3.0)}, {"x": r"a/.*", "y": r".*kernel"}
    )
    second = OURS.partition(
        {"x": OURS.scale(2.0), "y": OURS.scale(3.0)}, {"y": r".*kernel", "x": r"a/.*"}
    )
    for tx, factor in [(first, 2.0), (second, 3.0)]:
        updates, _ = tx.update(params, tx.init(params), params)
        assert float(updates["a"]["kernel"][0]) == factor


def test_partition_regex_equals_label_tree():
    transforms = {"a": OURS.adam(0.01), "b": OURS.sgd(0.02, 0.9)}
    regex = OURS.partition(transforms, {"a": r"dense/w|blocks/0", "b": r".*"})
    tree = OURS.partition(transforms, LABELS)
    assert (
        relative_deviation(
            trajectory(regex, optim.apply_updates), trajectory(tree, optim.apply_updates)
        )
        == 0.0
    )


def test_partition_unmatched_leaf_names_its_path():
    params = _layers_params()
    tx = OURS.partition({"decay": OURS.sgd(0.1)}, {"decay": r"dense/.*"})
    with pytest.raises(ValueError, match=r"leaf 'layers/0/bias' matches none of the patterns"):
        tx.init(params)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: OURS.partition([OURS.sgd(0.1)], "a"), TypeError, "transforms must be a dict"),
        (
            lambda: OURS.partition({"a": OURS.sgd(0.1)}, {"w": "b"}),
            ValueError,
            r"no transformation.*'b'",
        ),
        (lambda: OURS.partition({"a": "sgd"}, "a"), TypeError, r"transforms\['a'\]"),
        (
            lambda: OURS.partition({"a": OURS.sgd(0.1)}, {"a": "(["}),
            ValueError,
            r"param_labels\['a'\]",
        ),
    ],
)
def test_partition_bad_input(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_partition_label_function_checked_at_init(params):
    tx = OURS.partition({"a": OURS.sgd(0.1)}, lambda p: jax.tree.map(lambda _: "c", p))
    with pytest.raises(ValueError, match="no transformation"):
        tx.init(params)


def _matrices(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


def test_named_chain_and_selective_transform_checks(params):
    tx = OURS.named_chain(("clip", OURS.clip(1.0)), ("sgd", OURS.sgd(0.1)))
    grads = jax.tree.map(jnp.ones_like, params)
    with pytest.raises(ValueError, match=r"does not belong to this named_chain of \['clip', 'sgd'"):
        tx.update(grads, {"clip": (), "adam": ()}, params)
    with pytest.raises(ValueError, match=r"names must be unique; repeated: \['a'\]"):
        OURS.named_chain(("a", OURS.clip(1.0)), ("a", OURS.sgd(0.1)))
    with pytest.raises(TypeError, match=r"named_chain argument 1 must be a \(name, transf"):
        OURS.named_chain(("a", OURS.clip(1.0)), OURS.sgd(0.1))
    with pytest.raises(
        ValueError,
        match=r"freeze_mask must have the structure of params.*"
        r"not in params: freeze_mask\['x'\]",
    ):
        OURS.selective_transform(OURS.sgd(0.1), freeze_mask={"x": True}).init(params)
    with pytest.raises(TypeError, match=r"freeze_mask\['dense'\]\['w'\] must be a Python bool"):
        OURS.selective_transform(OURS.sgd(0.1), freeze_mask={"dense": {"w": 1, "b": True}})
    # A single bool and a function of the params, as the mask of freeze().
    frozen, _ = jitted_update(
        OURS.selective_transform(OURS.sgd(0.1), freeze_mask=True), grads, params
    )
    assert all(bool(jnp.all(x == 0)) for x in jax.tree.leaves(frozen))
    by_fn, _ = jitted_update(
        OURS.selective_transform(OURS.sgd(0.1), freeze_mask=_matrices), grads, params
    )
    by_tree, _ = jitted_update(
        OURS.selective_transform(OURS.sgd(0.1), freeze_mask=MASK), grads, params
    )
    assert relative_deviation(by_fn, by_tree) == 0.0
