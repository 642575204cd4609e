"""A small ``optim.fit`` run that checkpoints often, for the fault-injection tests.

``python fit_with_checkpoints.py CHECKPOINT_DIR OUTPUT [--resume] [--steps N]
[--checkpoint-every K]`` trains a tanh MLP (about 1.3 MiB of float32 parameters, so each
checkpoint of parameters, Adam's two moments and the loss history is about 4 MiB and takes a
noticeable time to write) with Adam on minibatches, saving a checkpoint to CHECKPOINT_DIR
every K steps. With ``--resume`` it continues from the latest complete checkpoint there.

When training finishes it writes OUTPUT, a ``.npz`` file with the final parameters
(``params<path>``), optimizer state (``opt_state<path>``) and per-step losses (``losses``),
where ``<path>`` is the leaf's key path, e.g. ``params['w1']``. OUTPUT appears only once it is
complete (written under another name, then renamed), so a run killed before the end leaves
none. Everything is seeded: two runs with the same arguments give the same bytes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import optim

INPUTS, HIDDEN, EXAMPLES, BATCH_SIZE = 16, 576, 256, 32


def loss_fn(params: dict, batch: tuple) -> jax.Array:
    """Mean squared error of a two-hidden-layer tanh MLP."""
    x, y = batch
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    hidden = jnp.tanh(hidden @ params["w2"] + params["b2"])
    return jnp.mean((hidden @ params["w3"] - y) ** 2)


def problem() -> tuple[dict, tuple]:
    """Initial parameters and a regression data set, the same in every run."""
    rng = np.random.default_rng(0)

    def dense(fan_in: int, fan_out: int) -> np.ndarray:
        return (rng.normal(size=(fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)

    params = {
        "w1": dense(INPUTS, HIDDEN),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": dense(HIDDEN, HIDDEN),
        "b2": np.zeros(HIDDEN, np.float32),
        "w3": dense(HIDDEN, 1),
    }
    x = rng.normal(size=(EXAMPLES, INPUTS)).astype(np.float32)
    y = np.sin(x[:, :1] * x[:, 1:2]).astype(np.float32)
    # JAX arrays: resuming with NumPy data is a separate case (train/test_fault_injection.py,
    # test_resume_with_numpy_data), kept out of the kill tests.
    return params, (jnp.asarray(x), jnp.asarray(y))


def flat_leaves(prefix: str, tree: object) -> dict[str, np.ndarray]:
    """``{prefix + key path: leaf}`` for every leaf of ``tree``."""
    return {
        prefix + jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint_dir", type=Path)
    parser.add_argument("output", type=Path, help="where to write the final .npz")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the latest complete checkpoint"
    )
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--checkpoint-every", type=int, default=2)
    args = parser.parse_args()

    params, data = problem()
    result = optim.fit(
        loss_fn,
        params,
        optim.adam(1e-3),
        data,
        steps=args.steps,
        batch_size=BATCH_SIZE,
        key=jax.random.PRNGKey(1),
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        progress=False,
    )
    arrays = {
        **flat_leaves("params", result.params),
        **flat_leaves("opt_state", result.opt_state),
        "losses": np.asarray(result.losses),
    }
    partial = args.output.with_name(args.output.name + ".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, args.output)


if __name__ == "__main__":
    main()
