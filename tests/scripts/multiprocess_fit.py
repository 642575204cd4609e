"""fit across processes on one machine: ``python multiprocess_fit.py PROCESS_ID NUM_PROCESSES
PORT`` starts one of them (4 CPU devices each); ``PROCESS_ID=-1`` runs the same training in a
single process on 8 devices as the reference. Prints the losses as JSON (process 0 only).

On a real cluster each host runs the same script with its own process id and the
coordinator's address instead of 127.0.0.1 (see the README).
"""

import json
import os
import sys

process_id, num_processes, port = (int(a) for a in sys.argv[1:4])
devices_per_process = 8 if process_id < 0 else 8 // num_processes
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices_per_process}"

import jax  # noqa: E402

if process_id >= 0:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=120,
    )

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import optim  # noqa: E402


def loss_fn(params, batch):
    x, y = batch
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] - y) ** 2)


def main() -> None:
    rng = np.random.default_rng(0)  # the same data and initial weights in every process
    params = {
        "w1": rng.normal(size=(8, 64)).astype(np.float32) * 0.3,
        "b1": np.zeros(64, np.float32),
        "w2": rng.normal(size=(64, 1)).astype(np.float32) * 0.1,
    }
    x = rng.normal(size=(128, 8)).astype(np.float32)
    y = np.sin(x[:, :1]).astype(np.float32)
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    result = optim.fit(
        loss_fn,
        params,
        optim.adamw(0.01),
        (x, y),
        steps=20,
        batch_size=32,
        key=jax.random.PRNGKey(1),
        mesh=mesh,
        sharding="zero1",
        progress=False,
    )
    losses = np.asarray(
        jax.experimental.multihost_utils.process_allgather(result.losses, tiled=True)
    )
    if jax.process_index() == 0:
        print(
            json.dumps(
                {
                    "processes": jax.process_count(),
                    "devices": jax.device_count(),
                    "losses": losses.tolist(),
                }
            )
        )


if __name__ == "__main__":
    main()
