"""Steps to a target loss: Shampoo against AdamW on ill-conditioned least squares.

The inputs have a rotated covariance with condition number ``--condition`` (singular values
log-spaced from 1 down to ``1/sqrt(condition)``, then a random rotation), so no coordinate
axis is special: a diagonal method such as Adam cannot undo the rotation, while Shampoo's
Kronecker factors (here L, the inputs' side, is their covariance) can. Each optimizer runs
full-batch for ``--steps`` steps at every learning rate of ``--lrs``; the table gives, at its
best rate (fewest steps to reach ``--target`` times the initial loss, then the lowest final
loss), the steps to the target and the final loss.

    python benchmarks/shampoo_least_squares.py [--steps 500] [--condition 1e4]
"""

from __future__ import annotations

import argparse
import json
import math

import jax
import jax.numpy as jnp
import numpy as np

import optim

OPTIMIZERS = {
    "adamw": lambda lr: optim.adamw(lr, weight_decay=0.0),
    "shampoo": lambda lr: optim.shampoo(lr, precondition_every=10),
}


def problem(d_in: int, d_out: int, examples: int, condition: float):
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(d_in, d_in)))
    scales = np.logspace(0, -0.5 * math.log10(condition), d_in)
    x = jnp.asarray(rng.normal(size=(examples, d_in)) * scales @ rotation.T, jnp.float32)
    y = x @ jnp.asarray(rng.normal(size=(d_in, d_out)), jnp.float32)

    def loss(params):
        return 0.5 * jnp.mean(jnp.sum((x @ params["w"] - y) ** 2, axis=-1))

    return loss, {"w": jnp.zeros((d_in, d_out))}


def losses_of(tx, loss, params, steps: int) -> np.ndarray:
    def step(carry, _):
        p, s = carry
        updates, s = tx.update(jax.grad(loss)(p), s, p)
        p = optim.apply_updates(p, updates)
        return (p, s), loss(p)

    _, losses = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), length=steps))(params)
    return np.asarray(losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--condition", type=float, default=1e4)
    parser.add_argument("--dims", default="32,16", help="inputs,outputs")
    parser.add_argument("--target", type=float, default=1e-3)
    parser.add_argument("--lrs", default="1e-3,3e-3,1e-2,3e-2,1e-1,3e-1,1,3")
    parser.add_argument("--output", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    d_in, d_out = (int(d) for d in args.dims.split(","))
    loss, params = problem(d_in, d_out, 16 * d_in, args.condition)
    target = args.target * float(loss(params))
    rows = []
    for name, make in OPTIMIZERS.items():
        best = None
        for lr in (float(v) for v in args.lrs.split(",")):
            losses = losses_of(make(lr), loss, params, args.steps)
            hit = np.nonzero(losses < target)[0]
            steps = int(hit[0]) + 1 if hit.size else None
            final = float(losses[-1]) if np.isfinite(losses[-1]) else math.inf
            key = (steps if steps is not None else math.inf, final)
            if best is None or key < best[0]:
                best = (key, {"optimizer": name, "lr": lr, "steps": steps, "final": final})
        rows.append(best[1])
    print(
        f"least squares {d_in}x{d_out}, condition {args.condition:g}, target "
        f"{args.target:g} x initial loss, {args.steps} steps"
    )
    print(f"{'optimizer':<10} {'best lr':>8} {'steps to target':>16} {'final loss':>11}")
    for r in rows:
        steps = "not reached" if r["steps"] is None else str(r["steps"])
        print(f"{r['optimizer']:<10} {r['lr']:>8g} {steps:>16} {r['final']:>11.3g}")
    if args.output:
        with open(args.output, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
