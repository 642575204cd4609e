"""Golden trajectories of Shampoo from the reference, for tests/optimizers/test_shampoo.py.

The reference is ``ScalableShampoo`` of pytorch-optimizer (a port of Distributed Shampoo), run
on CPU torch in float64 (so the trajectories carry the algorithm's values, not float32
rounding). Run it where torch and pytorch-optimizer are installed (they are not test
dependencies) to rewrite tests/data/shampoo_reference.npz:

    pip install torch==2.13.0 pytorch-optimizer==4.1.0
    python tests/scripts/shampoo_reference.py

Each problem is full-batch least squares ``0.5 * mean((X W + b - Y)^2)`` on inputs with a
rotated, ill-conditioned covariance; the file holds the data, the initial parameters, the
hyperparameters (as JSON, with optim's argument names) and the parameters after every step.

Settings of the reference: ``shape_interpretation=False`` (its merging of small dimensions
would turn a small matrix into a vector, left unpreconditioned), the decoupled learning rate
(the default; optim's learning rate scales the step last, too) and no weight decay. Its
Newton solver's tolerance is set to 1e-6 (its default 1e-3 stops earlier than
``optim.matrix_inverse_pth_root``'s 1e-6), and its power iteration's random start is seeded.
"""

from __future__ import annotations

import functools
import json
import pathlib

import numpy as np
import torch
from pytorch_optimizer.optimizer import shampoo as reference_module
from pytorch_optimizer.optimizer.utils import preconditioner
from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting
from pytorch_optimizer.optimizer.utils.matrix import compute_power_schur_newton

OUT = pathlib.Path(__file__).resolve().parents[1] / "data" / "shampoo_reference.npz"
STEPS = 12
GRAFTS = {
    "sgd": LayerWiseGrafting.SGD,
    "adagrad": LayerWiseGrafting.ADAGRAD,
    "rmsprop": LayerWiseGrafting.RMSPROP,
}

# name -> (weight shape, with a bias, optim's hyperparameters)
PROBLEMS = {
    # A matrix under one block, and a bias (the diagonal rule), RMSProp grafting.
    "matrix": (
        (6, 4),
        True,
        dict(
            learning_rate=0.02,
            block_size=128,
            b1=0.9,
            b2=0.99,
            eps=1e-10,
            matrix_eps=1e-6,
            precondition_every=3,
            start_preconditioning_step=5,
            graft_type="rmsprop",
            nesterov=True,
        ),
    ),
    # A matrix above the block size in both dimensions, with uneven last blocks (10 = 4 + 4 +
    # 2, 6 = 4 + 2), AdaGrad grafting.
    "blocked": (
        (10, 6),
        False,
        dict(
            learning_rate=0.05,
            block_size=4,
            b1=0.5,
            b2=0.95,
            eps=1e-10,
            matrix_eps=1e-6,
            precondition_every=2,
            start_preconditioning_step=3,
            graft_type="adagrad",
            nesterov=False,
        ),
    ),
    # SGD grafting, no momentum, roots at every step from the first (the reference refuses
    # b2 = 1, the summed statistics of the paper).
    "sgd_graft": (
        (5, 3),
        True,
        dict(
            learning_rate=0.05,
            block_size=128,
            b1=0.0,
            b2=0.999,
            eps=1e-10,
            matrix_eps=1e-6,
            precondition_every=1,
            start_preconditioning_step=1,
            graft_type="sgd",
            nesterov=False,
        ),
    ),
}


def problem_data(rng: np.random.Generator, shape: tuple[int, int], bias: bool) -> dict:
    """Inputs with a rotated covariance of condition number 1e3, targets of a random linear
    map, and initial parameters."""
    n_in, n_out = shape
    rotation, _ = np.linalg.qr(rng.normal(size=(n_in, n_in)))
    scales = np.logspace(0, -1.5, n_in)
    x = rng.normal(size=(16, n_in)) * scales @ rotation.T
    y = x @ rng.normal(size=shape) + 0.1 * rng.normal(size=(16, n_out))
    data = {"x": x, "y": y, "w": 0.1 * rng.normal(size=shape)}
    if bias:
        data["b"] = 0.1 * rng.normal(size=(n_out,))
    return data


def run_reference(data: dict, hyper: dict) -> dict:
    x, y = torch.tensor(data["x"]), torch.tensor(data["y"])
    params = {k: torch.tensor(data[k], requires_grad=True) for k in ("w", "b") if k in data}
    optimizer = reference_module.ScalableShampoo(
        list(params.values()),
        lr=hyper["learning_rate"],
        betas=(hyper["b1"], hyper["b2"]),
        moving_average_for_momentum=False,
        weight_decay=0.0,
        decoupled_learning_rate=True,
        inverse_exponent_override=0,
        start_preconditioning_step=hyper["start_preconditioning_step"],
        preconditioning_compute_steps=hyper["precondition_every"],
        statistics_compute_steps=1,
        block_size=hyper["block_size"],
        shape_interpretation=False,
        graft_type=GRAFTS[hyper["graft_type"]],
        nesterov=hyper["nesterov"],
        diagonal_eps=hyper["eps"],
        matrix_eps=hyper["matrix_eps"],
        use_svd=False,
    )
    path = {k: [] for k in params}
    for _ in range(STEPS):
        optimizer.zero_grad()
        prediction = x @ params["w"] + (params["b"] if "b" in params else 0.0)
        loss = 0.5 * torch.mean((prediction - y) ** 2)
        loss.backward()
        optimizer.step()
        for k, p in params.items():
            path[k].append(p.detach().numpy().copy())
    return {k: np.stack(v) for k, v in path.items()}


def main() -> None:
    torch.manual_seed(0)
    preconditioner.compute_power_schur_newton = functools.partial(
        compute_power_schur_newton, error_tolerance=1e-6
    )
    rng = np.random.default_rng(0)
    arrays = {}
    for name, (shape, bias, hyper) in PROBLEMS.items():
        # Rounded to float32 first: the test starts from the very values the file holds.
        data = {
            k: v.astype(np.float32).astype(np.float64)
            for k, v in problem_data(rng, shape, bias).items()
        }
        path = run_reference(data, hyper)
        arrays[f"{name}/hyper"] = np.array(json.dumps(hyper))
        for k, v in data.items():
            arrays[f"{name}/{k}"] = v.astype(np.float32)
        for k, v in path.items():
            arrays[f"{name}/path_{k}"] = v.astype(np.float32)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
