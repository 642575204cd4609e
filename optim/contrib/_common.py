"""Checks shared by the contributed optimizers."""

from __future__ import annotations

import jax.numpy as jnp

from optim._tree import PyTree, is_array, keystr, leaves_with_paths


def reject_complex(params: PyTree, algorithm: str, why: str) -> None:
    """Raise ``ValueError`` naming the first complex leaf of ``params``.

    For algorithms whose update rule orders or clips values (undefined for complex numbers).
    The check reads dtypes only, so it costs nothing under ``jit``.
    """
    for path, leaf in leaves_with_paths(params):
        if is_array(leaf) and jnp.iscomplexobj(leaf):
            raise ValueError(
                f"{algorithm} is not defined for complex parameters ({why}): "
                f"params{keystr(path)} has dtype {leaf.dtype}. Optimize the real and "
                "imaginary parts as separate real arrays instead."
            )
