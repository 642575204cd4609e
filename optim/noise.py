"""Gradient noise: annealed Gaussian noise added to the updates, and noisy SGD.

The PRNG key is a leaf of the transformation (a typed key array next to the float32
hyperparameters), so re-creating the optimizer with another key or learning rate reuses the
compiled program, and ``jax.vmap`` over keys trains independently-noised models.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import hyper
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_params,
    compute_dtype,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain
from optim.transforms._building_blocks import scale_by_learning_rate

__all__ = ["AddNoiseState", "add_noise", "noisy_sgd"]


class AddNoiseState(NamedTuple):
    """The step count (for the annealing) and the key the next step's noise is drawn from."""

    count: jax.Array
    rng_key: jax.Array


@pytree_dataclass
class AddNoise(Transformation):
    r"""Annealed gradient noise (Neelakantan et al., 2015, "Adding Gradient Noise Improves
    Learning for Very Deep Networks").

    .. math:: u_t = g_t + \sigma_t \xi_t,\quad \sigma_t^2 = \frac{\eta}{t^\gamma},\quad
        \xi_t \sim \mathcal N(0, I)

    (complex leaves: standard complex normal). The noise is drawn exactly as optax draws it:
    the state's key is split into the next state's key and a sample key, which is split once
    per leaf of the updates in tree order; each leaf samples ``jax.random.normal`` in its
    compute dtype.
    """

    eta: Any
    gamma: Any
    key: jax.Array

    def init(self, params: PyTree) -> AddNoiseState:
        check_params(params)
        return AddNoiseState(count=zero_count(), rng_key=self.key)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        std = jnp.sqrt(self.eta / count**self.gamma)
        rng_key, sample_key = jax.random.split(state.rng_key)
        # One key per non-None leaf, in order, as optax splits (it counts every leaf).
        treedef = jax.tree.structure(updates)
        keys = jax.random.split(sample_key, treedef.num_leaves)
        key_tree = jax.tree.unflatten(treedef, [keys[i] for i in range(treedef.num_leaves)])
        out = map_arrays(
            lambda g, k: upcast(g) + std * jax.random.normal(k, g.shape, compute_dtype(g)),
            updates,
            key_tree,
        )
        return cast_like_grads(out, updates), AddNoiseState(count=count, rng_key=rng_key)


def _as_key(key: Any) -> jax.Array:
    """A typed PRNG key from an int seed, a typed key, or a legacy uint32 key of shape (2,)."""
    if isinstance(key, (bool, str, bytes, float)):
        raise TypeError(f"key must be an int seed or a jax.random key, got {key!r}")
    if isinstance(key, int):
        return jax.random.key(key)
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if jnp.shape(key) != ():
            raise ValueError(f"key must be a single key, got a key array of shape {key.shape}")
        return key
    if dtype is not None and jnp.issubdtype(dtype, jnp.integer):
        if jnp.shape(key) == ():
            return jax.random.key(key)
        if jnp.shape(key) == (2,) and dtype == jnp.uint32:  # jax.random.PRNGKey(seed)
            return jax.random.wrap_key_data(key)
    raise TypeError(
        "key must be an int seed, a jax.random.key(seed) or a jax.random.PRNGKey(seed), got "
        f"{type(key).__name__} of dtype {dtype} and shape {jnp.shape(key) if dtype else '-'}"
    )


def _resolve_key(key: Any, seed: int | None) -> jax.Array:
    """optax's handling of ``key=None`` and the deprecated ``seed``; warnings name the caller."""
    if seed is not None:
        warnings.warn("seed is deprecated, pass key instead", DeprecationWarning, stacklevel=3)
        if key is not None:
            raise ValueError("give key or seed, not both")
        key = seed
    if key is None:
        warnings.warn("no key given for the gradient noise, using key 0; pass key=", stacklevel=3)
        key = 0
    return _as_key(key)


def add_noise(eta: Any, gamma: Any, key: Any = None, *, seed: int | None = None) -> AddNoise:
    """Add annealed Gaussian noise to the updates (``optax.add_noise``).

    ``key`` is an int seed or a JAX PRNG key. As in optax, ``key=None`` warns and uses key 0,
    and the deprecated ``seed`` is accepted in its place.
    """
    return AddNoise(
        eta=hyper(eta, "eta", schedule=False, low=0.0),
        gamma=hyper(gamma, "gamma", schedule=False, low=0.0),
        key=_resolve_key(key, seed),
    )


def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: Any = 0.01,
    gamma: Any = 0.55,
    key: Any = None,
    *,
    seed: int | None = None,
) -> Chain:
    r"""Noisy SGD (Neelakantan et al., 2015): :math:`\theta_{t+1} = \theta_t - \alpha_t(g_t +
    \mathcal N(0, \eta / t^\gamma))`; see ``add_noise``."""
    key = _resolve_key(key, seed)
    return chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))
