"""Golden SOAP trajectories from the authors' reference, for tests/optimizers/test_soap.py.

The oracle is ``SOAP`` in ``soap.py`` of https://github.com/nikhilvyas/SOAP (commit a1e5535,
the authors' implementation of Vyas et al., 2024), run on CPU torch in float32, its default.
Run it with a copy of that file:

    pip install torch==2.13.0 numpy
    python tests/scripts/soap_reference.py --soap-py /path/to/SOAP/soap.py

It writes tests/data/soap_reference.npz: for each problem its data, the reference's
hyperparameters (JSON) and the parameters after selected calls of ``step``. Where
pytorch-optimizer (``pytorch_optimizer.SOAP``, an independent rewrite) is installed, it runs
on the problems whose options it shares, and its largest deviation from the authors' code is
printed as a check of the oracle.

Each problem descends a loss whose gradient is computed here and in the test alike:
``least_squares`` is ``0.5 * |A_b W - B_b|^2 / rows`` with ``W`` the parameter as a
``(k, m)`` matrix; ``weighted`` is ``0.5 * sum(S_b * (W - T)^2)``, at call ``c`` of batch
``b = (c - 1) % 3``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib

import numpy as np
import torch

OUT = pathlib.Path(__file__).resolve().parents[1] / "data" / "soap_reference.npz"
CALLS = 31  # 30 Adam steps after the first call, which only initialises the bases
SAVED = (1, 2, 3, 10, 11, 12, 21, 31)  # the params after these calls are kept
# Call k takes the gradient of batch (k - 1) % BATCHES. With one batch the second call would
# see the first call's gradient again (the first call takes no step), and the eigenbasis of
# that gradient's own factors diagonalises it: Adam's sign-like first step would then turn the
# rounding errors of the zero entries into steps of full size, different in every
# implementation.
BATCHES = 3

# Factors are full rank after the first gradient in every problem (each rotated axis is no
# longer than the product of the others): a rank-deficient factor has a null space whose
# eigenvectors eigh may return in any orthonormal basis, and Adam's per-coordinate
# normalisation depends on that choice, so no two implementations would agree.
PROBLEMS = {
    # A square weight, default SOAP hyperparameters but the learning rate: bases refreshed by
    # QR at calls 11, 21 and 31.
    "matrix": dict(shape=(6, 6), loss="least_squares", rows=12, hyper=dict(lr=1e-2)),
    # A weight with one axis above max_precond_dim (12 > 8): that axis is not rotated.
    "wide": dict(
        shape=(5, 12),
        loss="least_squares",
        rows=12,
        hyper=dict(lr=1e-2, weight_decay=0.0, max_precond_dim=8, precondition_frequency=5),
    ),
    # A 1-D bias: plain Adam (after the first call, which takes no step).
    "bias": dict(shape=(7,), loss="weighted", hyper=dict(lr=1e-2)),
    # An NHWC kernel with merged axes ((2, 3, 3, 4) -> NCHW (2, 4, 3, 3) -> (8, 3, 3)), its
    # own shampoo_beta, step normalisation and no bias correction.
    "kernel": dict(
        shape=(2, 3, 3, 4),
        loss="weighted",
        hyper=dict(
            lr=1e-2,
            weight_decay=0.0,
            shampoo_beta=0.9,
            max_precond_dim=8,
            precondition_frequency=4,
            merge_dims=True,
            data_format="channels_last",
            normalize_grads=True,
            correct_bias=False,
        ),
    ),
}


def problem_data(name: str, spec: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The problem's initial parameters and data, in float16 (exact in float32, and half the
    file)."""
    shape = spec["shape"]
    data = {"init": rng.standard_normal(shape)}
    if spec["loss"] == "least_squares":
        k, m = shape
        # Columns of A on different scales: an ill-conditioned problem, where rotation helps.
        data["A"] = rng.standard_normal((BATCHES, spec["rows"], k)) * np.logspace(0, 1, k)
        data["B"] = rng.standard_normal((BATCHES, spec["rows"], m))
    else:
        data["S"] = np.exp(rng.uniform(-1, 1, (BATCHES, *shape)))
        data["T"] = rng.standard_normal(shape)
    return {key: value.astype(np.float16) for key, value in data.items()}


def as_torch(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32))


def gradient(spec: dict, data: dict, w: torch.Tensor, call: int) -> torch.Tensor:
    batch = (call - 1) % BATCHES
    if spec["loss"] == "least_squares":
        a, b = as_torch(data["A"][batch]), as_torch(data["B"][batch])
        return a.T @ (a @ w - b) / spec["rows"]
    return as_torch(data["S"][batch]) * (w - as_torch(data["T"]))


def trajectory(make_optimizer, spec: dict, data: dict) -> np.ndarray:
    w = torch.nn.Parameter(as_torch(data["init"]))
    opt = make_optimizer([w])
    saved = []
    for call in range(1, CALLS + 1):
        w.grad = gradient(spec, data, w.detach(), call)
        opt.step()
        if call in SAVED:
            saved.append(w.detach().numpy().copy())
    return np.stack(saved)


def load_authors_soap(path: str):
    spec = importlib.util.spec_from_file_location("authors_soap", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SOAP


def pytorch_optimizer_soap(hyper: dict):
    """pytorch-optimizer's SOAP with the authors' hyperparameters, or None where they differ:
    its normalisation adds eps (not 1e-30), and its merge of dimensions fails on these
    problems."""
    try:
        from pytorch_optimizer import SOAP
    except ImportError:
        return None
    if hyper.get("normalize_grads") or hyper.get("merge_dims"):
        return None
    kwargs = dict(hyper)
    if "max_precond_dim" in kwargs:
        kwargs["max_precondition_dim"] = kwargs.pop("max_precond_dim")
    return lambda params: SOAP(params, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soap-py", required=True, help="soap.py of nikhilvyas/SOAP")
    args = parser.parse_args()
    authors_soap = load_authors_soap(args.soap_py)
    torch.manual_seed(0)
    rng = np.random.default_rng(14)
    arrays: dict[str, np.ndarray] = {"saved_calls": np.array(SAVED, np.int32)}
    for name, spec in PROBLEMS.items():
        data = problem_data(name, spec, rng)
        hyper = spec["hyper"]
        ours = trajectory(lambda params, h=hyper: authors_soap(params, **h), spec, data)
        for key, value in data.items():
            arrays[f"{name}/{key}"] = value
        arrays[f"{name}/trajectory"] = ours
        arrays[f"{name}/spec"] = np.array(json.dumps({k: v for k, v in spec.items()}))
        other = pytorch_optimizer_soap(hyper)
        if other is not None:
            theirs = trajectory(other, spec, data)
            deviation = np.max(np.abs(theirs - ours)) / np.max(np.abs(ours))
            print(f"{name}: pytorch-optimizer's SOAP deviates by {deviation:.2e} (relative)")
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
