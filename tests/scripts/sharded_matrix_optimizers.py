"""Shampoo's roots and SOAP's bases shared among 8 simulated CPU devices; print JSON.

Started by tests/optimizers/test_matrix_sharding.py in a subprocess, because the device count
must be set before JAX is imported. For each optimizer:

- ``fit`` on one device and on the mesh (``"replicated"``, ``"zero1"``): the losses;
- one jitted update, compiled without and with ``jax.set_mesh(mesh)``: how many matrices
  there are, and how many the compiled program solves per device (the leading size of the
  batched solver's operands: the Newton iteration's loop state for Shampoo, the eigh and QR
  calls for SOAP; on one device SOAP solves each matrix in a call of its own),
  and the largest difference between the two programs' updates over a few steps (each
  recomputing the roots or bases).
"""

import json
import os
import re

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import jax
import jax.numpy as jnp
import numpy as np

import optim

# Every weight square and of full rank at the first step (64 examples a batch, 16 wide): SOAP's
# first bases come from eigh, and a rank-deficient factor has a null space whose basis is
# decided by rounding (any basis of it is an eigenbasis), so two runs whose gradients differ in
# the last bit (the mesh's all-reduce sums in another order) may take different, equally valid
# bases there; full-rank factors keep both runs on one path.
WIDTH, EXAMPLES, BATCH = 16, 256, 64


def loss_fn(params, batch):
    x, y = batch
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - y) ** 2)


def problem():
    k = jax.random.split(jax.random.PRNGKey(0), 4)
    params = {
        "w1": jax.random.normal(k[0], (WIDTH, WIDTH)) / WIDTH**0.5,
        "b1": jnp.zeros(WIDTH),
        "w2": jax.random.normal(k[1], (WIDTH, WIDTH)) / WIDTH**0.5,
    }
    x = jax.random.normal(k[2], (EXAMPLES, WIDTH))
    y = jnp.sin(x @ jax.random.normal(k[3], (WIDTH, WIDTH)))
    return params, (x, y)


OPTIMIZERS = {
    # Blocks of 8: each weight is 2 x 2 blocks with 2 factors each, 16 roots in all.
    "shampoo": (optim.shampoo(0.02, block_size=8, precondition_every=3), r" while\(", r"8,8\]"),
    # Two rotated axes per weight: 4 factors of 16 x 16, one batched eigh (first step) and QR.
    "soap": (
        optim.soap(0.01, weight_decay=0.0, precondition_frequency=3),
        r"lapack_\w*(syevd|geqrf)",
        r"16,16\]",
    ),
}


def problems_per_call(text: str, call: str, matrix: str) -> list[int]:
    """The leading sizes of the f32[k, n, n] operands of the lines that run ``call``."""
    sizes = set()
    for line in text.splitlines():
        if re.search(call, line):
            sizes.update(int(k) for k in re.findall(r"f32\[(\d+)," + matrix, line))
    return sorted(sizes)


def compiled_update(tx, params, state, grads, mesh=None) -> tuple:
    def update(state, grads):
        return tx.update(grads, state, params)

    if mesh is None:
        return jax.jit(update).lower(state, grads).compile()
    with jax.set_mesh(mesh):
        return jax.jit(update).lower(state, grads).compile()


def main() -> None:
    params, data = problem()
    mesh = jax.make_mesh((8,), ("data",))
    kwargs = dict(steps=24, batch_size=BATCH, key=jax.random.PRNGKey(1), progress=False)
    out = {"devices": jax.device_count()}
    for name, (tx, call, matrix) in OPTIMIZERS.items():
        runs = {"single": optim.fit(loss_fn, params, tx, data, **kwargs)}
        for mode in ("replicated", "zero1"):
            runs[mode] = optim.fit(loss_fn, params, tx, data, mesh=mesh, sharding=mode, **kwargs)
        row = {mode: np.asarray(run.losses).tolist() for mode, run in runs.items()}

        state = tx.init(params)
        grads = [
            jax.grad(loss_fn)(
                params, jax.tree.map(lambda a, i=i: a[i * BATCH : (i + 1) * BATCH], data)
            )
            for i in range(4)
        ]
        one, shared = (compiled_update(tx, params, state, grads[0], m) for m in (None, mesh))
        # The matrices to solve: Shampoo's statistics (stacks of blocks), SOAP's factors.
        factors = state[0].stats if name == "shampoo" else state[0].factors
        row["matrices"] = sum(m.shape[0] if m.ndim == 3 else 1 for m in jax.tree.leaves(factors))
        row["problems_one_device"] = problems_per_call(one.as_text(), call, matrix)
        row["problems_per_device"] = problems_per_call(shared.as_text(), call, matrix)
        # Four updates, the roots or bases recomputed at the first and the fourth.
        state_one = state_shared = state
        largest = 0.0
        for g in grads:
            u_one, state_one = one(state_one, g)
            u_shared, state_shared = shared(state_shared, g)
            diffs = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), u_one, u_shared)
            largest = max(largest, *jax.tree.leaves(diffs))
        row["largest_update_difference"] = largest
        out[name] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
