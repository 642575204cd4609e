"""Run fit on 8 simulated CPU devices, one device and each sharding plan; print JSON.

Started by tests/train/test_sharding.py in a subprocess, because the device count must be set
before JAX is imported.
"""

import json
import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import jax
import jax.numpy as jnp
import numpy as np

import optim


def loss_fn(params, batch):
    x, y = batch
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def main() -> None:
    k = jax.random.split(jax.random.PRNGKey(0), 5)
    params = {
        "w1": jax.random.normal(k[0], (8, 64)) * 0.3,
        "b1": jnp.zeros(64),
        "w2": jax.random.normal(k[1], (64, 1)) * 0.1,
        "b2": jnp.zeros(1),
    }
    x = jax.random.normal(k[2], (128, 8))
    y = jnp.sin(x[:, :1]) + 0.1 * jax.random.normal(k[3], (128, 1))
    mesh = jax.make_mesh((8,), ("data",))
    kwargs = dict(steps=30, batch_size=32, key=jax.random.PRNGKey(1), progress=False)
    tx = optim.adamw(0.01, weight_decay=0.01)
    out = {"devices": jax.device_count()}
    single = optim.fit(loss_fn, params, tx, (x, y), flatten=False, **kwargs)
    out["single"] = np.asarray(single.losses).tolist()
    for mode in ("replicated", "zero1", "fsdp"):
        result = optim.fit(loss_fn, params, tx, (x, y), mesh=mesh, sharding=mode, **kwargs)
        mu = result.opt_state[0].mu["w1"]
        out[mode] = {
            "losses": np.asarray(result.losses).tolist(),
            "state_bytes_per_device": sum(
                leaf.addressable_shards[0].data.nbytes for leaf in jax.tree.leaves(result.opt_state)
            ),
            "state_bytes_total": sum(leaf.nbytes for leaf in jax.tree.leaves(result.opt_state)),
            "mu_w1_shard_shape": list(mu.addressable_shards[0].data.shape),
            "params_w1_shard_shape": list(result.params["w1"].addressable_shards[0].data.shape),
            "max_param_diff": max(
                float(jnp.max(jnp.abs(a - b)))
                for a, b in zip(
                    jax.tree.leaves(result.params), jax.tree.leaves(single.params), strict=True
                )
            ),
        }
    try:
        optim.fit(
            loss_fn,
            params,
            tx,
            (x, y),
            mesh=mesh,
            steps=2,
            batch_size=12,
            key=jax.random.PRNGKey(0),
            progress=False,
        )
    except ValueError as error:
        out["indivisible_error"] = str(error)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
