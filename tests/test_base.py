"""The optimizer object: a pytree of float32 hyperparameters with optax's protocol."""

from __future__ import annotations

import dataclasses
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import convex_loss, nested_params, relative_deviation, trajectory

import optim
from optim.contrib._reduce_on_plateau import ReduceOnPlateau
from optim.optimizers._adam import ScaleByAdam
from optim.optimizers._lbfgs import ScaleByLBFGS
from optim.transforms._accumulation import ApplyEveryK, Trace

# One factory per alias, each taking the learning rate; used by the property tests below.
ALIASES = {
    "sgd": lambda lr: optim.sgd(lr, momentum=0.9),
    "adam": optim.adam,
    "adamw": lambda lr: optim.adamw(lr, weight_decay=0.1),
    "nadam": optim.nadam,
    "nadamw": optim.nadamw,
    "rmsprop": lambda lr: optim.rmsprop(lr, centered=True, momentum=0.5),
    "adagrad": optim.adagrad,
    "clip_chain": lambda lr: optim.chain(optim.clip_by_global_norm(1.0), optim.adam(lr)),
}


def test_hyperparameters_are_float32_leaves():
    tx = optim.adamw(1e-3, weight_decay=0.1)
    leaves = jax.tree.leaves(tx)
    assert all(leaf.dtype == jnp.float32 and leaf.shape == () for leaf in leaves)
    # Each decay rate comes with its complement (b1, 1 - b1, b2, 1 - b2), both rounded to
    # float32 from the exact Python values, as optax computes them.
    assert [float(x) for x in leaves] == [
        float(np.float32(v)) for v in (0.9, 1 - 0.9, 0.999, 1 - 0.999, 1e-8, 0.0, 0.1, 1e-3)
    ]
    # NumPy scalars, not device arrays: frameworks that keep the optimizer as static metadata
    # (flax NNX) accept them, and a jitted function still traces them as arguments.
    assert all(isinstance(leaf, np.float32) for leaf in leaves)


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_jitted_step_traces_once_for_new_hyperparameters(name):
    traces = []

    @jax.jit
    def step(tx, params, state):
        traces.append(1)
        grads = jax.grad(convex_loss)(params)
        updates, state = tx.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    params = nested_params()
    for lr in [0.1, 0.01, 3e-4, 1.0]:
        tx = ALIASES[name](lr)
        step(tx, params, tx.init(params))
    assert len(traces) == 1


def test_vmap_over_learning_rate_matches_separate_runs():
    lrs = jnp.array([1e-3, 1e-2, 1e-1])
    params = nested_params()

    def final(lr):
        return trajectory(optim.adamw(lr, weight_decay=0.1), optim.apply_updates, 20, params)

    batched = jax.vmap(final)(lrs)
    for i, lr in enumerate([1e-3, 1e-2, 1e-1]):
        single = final(lr)
        assert relative_deviation(jax.tree.map(lambda x, i=i: x[i], batched), single) < 1e-6


@pytest.mark.parametrize(
    ("argument", "values", "build"),
    [
        ("b1", [0.5, 0.9], lambda v: optim.adam(0.01, b1=v)),
        ("b2", [0.9, 0.999], lambda v: optim.adam(0.01, b2=v)),
        ("eps", [1e-8, 1e-3], lambda v: optim.adam(0.01, eps=v)),
        ("weight_decay", [0.0, 0.5], lambda v: optim.adamw(0.01, weight_decay=v)),
        ("momentum", [0.0, 0.9], lambda v: optim.sgd(0.01, momentum=v)),
        ("decay", [0.5, 0.9], lambda v: optim.rmsprop(0.01, decay=v)),
        (
            "max_norm",
            [0.1, 10.0],
            lambda v: optim.chain(optim.clip_by_global_norm(v), optim.sgd(0.1)),
        ),
    ],
)
def test_vmap_over_any_float_hyperparameter(argument, values, build):
    params = nested_params()
    batched = jax.vmap(lambda v: trajectory(build(v), optim.apply_updates, 10, params))(
        jnp.array(values)
    )
    for i, v in enumerate(values):
        single = trajectory(build(v), optim.apply_updates, 10, params)
        assert relative_deviation(jax.tree.map(lambda x, i=i: x[i], batched), single) < 1e-6
    first, second = jax.tree.map(lambda x: x[0], batched), jax.tree.map(lambda x: x[1], batched)
    assert relative_deviation(first, second) > 1e-6, f"{argument} had no effect"


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_low_precision_params_keep_float32_arithmetic(dtype, name):
    params = nested_params(dtype=dtype)
    tx = ALIASES[name](1e-3)
    state = tx.init(params)
    grads = jax.grad(convex_loss)(params)
    updates, state = tx.update(grads, state, params)
    for leaf in jax.tree.leaves(tx):
        assert leaf.dtype == jnp.float32
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (jnp.float32, jnp.int32), leaf.dtype
    for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grads), strict=True):
        assert u.dtype == g.dtype == dtype
    new = optim.apply_updates(params, updates)
    assert all(p.dtype == dtype for p in jax.tree.leaves(new))


def test_bf16_second_moment_is_not_frozen():
    """optax#1414: b2 = 0.999 in bf16 rounds to 1.0 and nu stops moving. Ours stays float32."""
    params = {"w": jnp.ones((4,), jnp.bfloat16)}
    tx = optim.adam(1e-3)
    state = tx.init(params)
    for g in [1.0, 1.0, 0.0]:
        _, state = tx.update({"w": jnp.full((4,), g, jnp.bfloat16)}, state, params)
    nu = state[0].nu["w"]
    expected = (1 - 0.999) * (0.999 + 1.0) * 0.999  # two unit gradients then one zero
    # float32 arithmetic: 1 - float32(0.999) is 1.3e-5 off 0.001, hence rtol 5e-5. In bf16 the
    # decay 0.999 rounds to 1.0 and the last step would leave nu where it was (off by 0.1%).
    np.testing.assert_allclose(np.asarray(nu, np.float64), expected, rtol=5e-5)
    assert nu.dtype == jnp.float32


def test_non_array_leaves_pass_through_and_get_no_state():
    @dataclasses.dataclass
    class Module:  # like an equinox module: arrays beside static configuration
        w: jax.Array
        activation: object
        depth: int
        bias: object

    jax.tree_util.register_dataclass(
        Module, data_fields=["w", "activation", "depth", "bias"], meta_fields=[]
    )
    params = Module(jnp.ones(3), jax.nn.relu, 4, None)
    tx = optim.adamw(0.1, weight_decay=0.1)
    state = tx.init(params)
    adam_state = state[0]
    assert adam_state.mu.activation is None and adam_state.mu.depth is None
    assert len(jax.tree.leaves(state)) == 1 + 2  # count, mu.w, nu.w
    grads = Module(jnp.ones(3), None, None, None)  # what equinox's filter_grad returns
    updates, state = tx.update(grads, state, params)
    new = optim.apply_updates(params, updates)
    assert new.activation is jax.nn.relu and new.depth == 4 and new.bias is None
    assert float(jnp.max(new.w)) < 1.0


def test_ours_inside_optax_chain_and_optax_inside_ours(params):
    reference = trajectory(
        optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01)), optax.apply_updates
    )
    ours_in_optax = trajectory(
        optax.chain(optim.clip_by_global_norm(1.0), optim.adam(0.01)), optax.apply_updates
    )
    optax_in_ours = trajectory(
        optim.chain(optax.clip_by_global_norm(1.0), optim.adam(0.01)), optim.apply_updates
    )
    assert relative_deviation(ours_in_optax, reference) < 1e-5
    assert relative_deviation(optax_in_ours, reference) < 1e-5


def test_extra_args_are_ignored_or_passed(params):
    tx = optim.chain(optim.adam(0.1), optax.scale(1.0))
    state = tx.init(params)
    grads = jax.grad(convex_loss)(params)
    plain, _ = tx.update(grads, state, params)
    extra, _ = tx.update(grads, state, params, value=jnp.ones(()), unknown="x")
    assert relative_deviation(extra, plain) == 0.0


def test_schedule_as_learning_rate_is_a_pytree_and_matches_optax():
    schedule = optim.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 100)
    tx = optim.adamw(schedule, weight_decay=optim.linear_schedule(0.1, 0.0, 100))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(tx))
    theirs = optax.adamw(
        optax.warmup_cosine_decay_schedule(0.0, 1e-2, 10, 100),
        weight_decay=optax.linear_schedule(0.1, 0.0, 100),
    )
    assert (
        relative_deviation(
            trajectory(tx, optim.apply_updates), trajectory(theirs, optax.apply_updates)
        )
        < 1e-5
    )


def test_plain_function_schedule_is_wrapped(params):
    tx = optim.sgd(lambda count: 0.1 / (1 + count))
    assert jax.tree.leaves(tx) == []
    theirs = optax.sgd(lambda count: 0.1 / (1 + count))
    assert (
        relative_deviation(
            trajectory(tx, optim.apply_updates), trajectory(theirs, optax.apply_updates)
        )
        < 1e-6
    )


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("lr", [-1e-3, float("nan"), float("inf")])
@pytest.mark.parametrize("name", sorted(ALIASES))
def test_bad_learning_rate_is_rejected(name, lr):
    with pytest.raises(ValueError, match="learning_rate"):
        ALIASES[name](lr)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: optim.adam(1e-3, b1=1.0), r"b1 must be in \[0.0, 1.0\)"),
        (lambda: optim.adam(1e-3, b2=-0.1), "b2"),
        (lambda: optim.adam(1e-3, eps=-1.0), "eps"),
        (lambda: optim.adamw(1e-3, weight_decay=float("nan")), "weight_decay must be finite"),
        (lambda: optim.sgd(1e-3, momentum="0.9"), "momentum must be a number"),
        (lambda: optim.adam(jnp.ones(3)), "learning_rate must be a scalar"),
        (lambda: optim.adam(1e-3, mu_dtype=jnp.int8), "mu_dtype must be a floating"),
        (lambda: optim.chain(optim.adam(1e-3), "sgd"), "chain argument 1"),
    ],
)
def test_bad_hyperparameters_name_the_argument(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_traced_hyperparameters_skip_value_checks():
    # Under jit the value is unknown: accepted, not silently clamped.
    out = jax.jit(lambda lr: jax.tree.leaves(optim.sgd(lr))[0])(jnp.float32(-1.0))
    assert float(out) == -1.0


# A static option declares its check on its field: building the class directly is checked as
# the factory is (same exception, same message).
@pytest.mark.parametrize(
    ("factory", "cls", "kwargs"),
    [
        (optim.scale_by_adam, ScaleByAdam, {"nesterov": "no"}),
        (optim.scale_by_adam, ScaleByAdam, {"mu_dtype": jnp.int8}),
        (optim.scale_by_adam, ScaleByAdam, {"nu_dtype": "not a dtype"}),
        (optim.scale_by_lbfgs, ScaleByLBFGS, {"memory_size": 2.0}),
        (optim.scale_by_lbfgs, ScaleByLBFGS, {"memory_size": 0}),
        (optim.trace, Trace, {"decay": 0.9, "nesterov": 1}),
        (optim.apply_every, ApplyEveryK, {"k": 0}),
        (optim.contrib.reduce_on_plateau, ReduceOnPlateau, {"patience": 2**31}),
    ],
)
def test_a_static_option_is_checked_on_its_field(factory, cls, kwargs):
    with pytest.raises((TypeError, ValueError)) as from_factory:
        factory(**kwargs)
    parameters = inspect.signature(factory).parameters.items()
    defaults = {name: p.default for name, p in parameters if p.default is not p.empty}
    with pytest.raises(type(from_factory.value)) as from_class:
        cls(**{**defaults, **kwargs})
    assert str(from_class.value) == str(from_factory.value)


def test_static_options_are_canonical_hashable_metadata():
    tx = optim.scale_by_adam(mu_dtype="bfloat16", nesterov=np.bool_(True))
    assert tx.mu_dtype == jnp.dtype(jnp.bfloat16) and tx.nesterov is True
    _, treedef = jax.tree.flatten(tx)
    # Equal options give equal tree definitions: a jitted step does not retrace for a new
    # optimizer built with the same options.
    _, same = jax.tree.flatten(optim.scale_by_adam(mu_dtype=jnp.bfloat16, nesterov=True))
    assert treedef == same and hash(treedef) == hash(same)
    _, other = jax.tree.flatten(optim.scale_by_adam(mu_dtype=jnp.bfloat16))
    assert treedef != other


def test_unflatten_does_not_check_fields():
    # jit, vmap and tree_map rebuild the object with tracers, None or sentinels as children:
    # no field check runs then, and the static options come back as they were.
    tx = optim.scale_by_adam(nesterov=True, nu_dtype=jnp.bfloat16)
    leaves, treedef = jax.tree.flatten(tx)
    rebuilt = jax.tree.unflatten(treedef, [object()] * len(leaves))
    assert rebuilt.nesterov is True and rebuilt.nu_dtype == jnp.dtype(jnp.bfloat16)
    assert jax.tree.map(lambda _: None, tx).eps is None
    batched = jax.vmap(lambda b: optim.scale_by_adam(b1=b, nesterov=True))(jnp.array([0.5, 0.9]))
    assert batched.nesterov is True and batched.b1.rate.shape == (2,)


def test_gradient_structure_mismatch_names_the_path(params):
    tx = optim.adam(1e-3)
    state = tx.init(params)
    grads = jax.grad(convex_loss)(params)
    missing = {**grads, "dense": {"w": grads["dense"]["w"]}}
    with pytest.raises(ValueError, match=r"missing from grads: \['dense'\]\['b'\]"):
        tx.update(missing, state, params)
    reshaped = {**grads, "scale": jnp.ones((2,))}
    with pytest.raises(ValueError, match=r"grads\['scale'\] has shape \(2,\)"):
        tx.update(reshaped, state, params)


def test_integer_parameters_are_rejected():
    with pytest.raises(TypeError, match=r"params\['steps'\] is an array of dtype int32"):
        optim.adam(1e-3).init({"w": jnp.ones(2), "steps": jnp.arange(3)})
    with pytest.raises(TypeError, match=r"params\['n'\]"):
        optim.apply_updates({"n": jnp.arange(2)}, {"n": jnp.arange(2)})


def test_apply_updates_checks_structure():
    with pytest.raises(ValueError, match=r"updates\['w'\] has shape \(3,\)"):
        optim.apply_updates({"w": jnp.ones(2)}, {"w": jnp.ones(3)})


def test_state_from_another_chain_is_rejected(params):
    state = optim.sgd(0.1).init(params)
    with pytest.raises(ValueError, match="state does not belong to this chain"):
        optim.chain(optim.sgd(0.1), optim.sgd(0.1), optim.sgd(0.1)).update(params, state, params)


@pytest.mark.parametrize("mu_dtype", [None, jnp.bfloat16, jnp.float16, jnp.float32])
@pytest.mark.parametrize("nu_dtype", [None, jnp.bfloat16, jnp.float32])
def test_state_keeps_exactly_the_dtype_asked_for(mu_dtype, nu_dtype):
    params = nested_params()
    tx = optim.adamw(0.01, mu_dtype=mu_dtype, nu_dtype=nu_dtype)
    state = tx.init(params)
    grads = jax.grad(convex_loss)(params)
    for _ in range(2):
        updates, state = tx.update(grads, state, params)
    adam_state = state[0]
    assert all(x.dtype == (mu_dtype or jnp.float32) for x in jax.tree.leaves(adam_state.mu))
    assert all(x.dtype == (nu_dtype or jnp.float32) for x in jax.tree.leaves(adam_state.nu))
    assert all(u.dtype == jnp.float32 for u in jax.tree.leaves(updates))
    # bf16 storage rounds each moment to 8 bits, the step's arithmetic stays float32: the
    # trajectory stays within bf16 precision of the float32 one.
    reference = trajectory(optim.adamw(0.01), optim.apply_updates, 50)
    low = trajectory(tx, optim.apply_updates, 50)
    assert relative_deviation(low, reference) < 2e-2


@pytest.mark.parametrize("name", ["adam", "sgd", "rmsprop", "adagrad"])
def test_float64_params_keep_float64_under_x64(name):
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: x.astype(jnp.float64), nested_params())
        tx = ALIASES[name](1e-2)
        state = tx.init(params)
        grads = jax.grad(convex_loss)(params)
        updates, state = tx.update(grads, state, params)
        assert all(u.dtype == jnp.float64 for u in jax.tree.leaves(updates))
        assert all(x.dtype in (jnp.float64, jnp.int32) for x in jax.tree.leaves(state))
        assert all(h.dtype == jnp.float32 for h in jax.tree.leaves(tx))
        new = optim.apply_updates(params, updates)
        assert all(p.dtype == jnp.float64 for p in jax.tree.leaves(new))


def test_complex_params_follow_optax():
    """optax's own tests optimise complex parabolas; ours gives the same trajectory."""
    target = jnp.array([1.0 + 2.0j, -0.5 + 0.5j], jnp.complex64)

    def loss(p):
        return jnp.sum(jnp.abs(p["z"] - target) ** 2)

    for make in (
        lambda m: m.adam(0.05),
        lambda m: m.sgd(0.05, momentum=0.9),
        lambda m: m.rmsprop(0.01),
        lambda m: m.adagrad(0.1),
    ):
        results = []
        for lib, apply in ((optim, optim.apply_updates), (optax, optax.apply_updates)):
            tx, p = make(lib), {"z": jnp.zeros(2, jnp.complex64)}
            state = tx.init(p)
            for _ in range(50):
                # conj: JAX's gradient of a real loss of z is the conjugate of dL/dz*
                g = jax.tree.map(jnp.conj, jax.grad(loss)(p))
                u, state = tx.update(g, state, p)
                p = apply(p, u)
            results.append(p["z"])
        assert results[0].dtype == jnp.complex64
        np.testing.assert_allclose(results[0], results[1], rtol=2e-5, atol=1e-6)
        assert float(loss({"z": results[0]})) < float(loss({"z": jnp.zeros(2, jnp.complex64)}))
