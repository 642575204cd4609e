"""Differentially private SGD (Abadi et al., 2016): per-example clipping and Gaussian noise.

Both transformations take *per-example* gradients: every leaf of the updates has a batch
dimension on axis 0 (one gradient per example, e.g. from
``jax.vmap(jax.grad(loss), in_axes=(None, 0))``), and return one update per parameter, without
that axis. Put them first in a chain.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import hyper
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass
from optim._tree import PyTree, check_float_updates, compute_dtype, is_trainable, upcast
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain
from optim.optimizers._sgd import _momentum
from optim.transforms._adding import _as_key, _resolve_key
from optim.transforms._clipping import (
    _clip_bound,
    _per_example_leaves,
    per_example_global_norm_clip,
)
from optim.transforms._scaling import scale_by_learning_rate


class DifferentiallyPrivateAggregateState(NamedTuple):
    """The state of :func:`optim.contrib.differentially_private_aggregate` (and of the first
    transformation of :func:`optim.contrib.dpsgd`).

    Attributes:
      rng_key: the PRNG key the next step's noise is drawn from.
    """

    rng_key: jax.Array


@pytree_dataclass
class DifferentiallyPrivateAggregate(Transformation):
    r"""The Gaussian mechanism of DP-SGD (Abadi et al., 2016, "Deep Learning with Differential
    Privacy", Algorithm 1) on a batch of :math:`B` per-example gradients :math:`g_i`:

    .. math::
        u = \frac{1}{B}\Big(\sum_{i=1}^{B} g_i \min\!\Big(1, \frac{C}{\lVert g_i\rVert_2}\Big)
        + \sigma C\, \xi\Big),\quad \xi \sim \mathcal N(0, I),

    :math:`C` = ``l2_norm_clip`` (each example's norm taken over all leaves together) and
    ``noise_std`` = :math:`\sigma C`. The noise is drawn as optax draws it: the state's key is
    split into the next state's key and one key per leaf of the updates (in tree order), and
    each leaf samples ``jax.random.normal``; so a key gives optax's noise. Half-precision
    leaves draw theirs in float32 (as ``add_noise``), rounded once with the update: optax draws
    in bfloat16 or float16, whose arithmetic XLA fuses differently with and without ``jit``
    (draws that part by ulps, a 1% difference of the update measured). Updates without a
    floating leaf (an empty tree) pass through.
    """

    l2_norm_clip: Any
    noise_std: Any
    key: jax.Array

    def init(self, params: PyTree) -> DifferentiallyPrivateAggregateState:
        del params
        return DifferentiallyPrivateAggregateState(rng_key=self.key)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_float_updates(updates)
        if not any(is_trainable(x) for x in jax.tree.leaves(updates)):
            return updates, state  # nothing to aggregate
        # Checked here first so that an error names this transformation.
        batch_size = _per_example_leaves(updates, "differentially_private_aggregate")[0].shape[0]
        clipped, _ = per_example_global_norm_clip(updates, self.l2_norm_clip)
        # optax counts every leaf but None when it splits the key.
        num_leaves = len(jax.tree.leaves(updates))
        new_key, *keys = jax.random.split(state.rng_key, num_leaves + 1)
        flat, treedef = jax.tree.flatten(updates, is_leaf=lambda x: x is None)
        flat_clipped = treedef.flatten_up_to(clipped)
        out, index = [], 0
        for leaf, total in zip(flat, flat_clipped, strict=True):
            if total is None:
                out.append(None)
            else:
                noise = jax.random.normal(keys[index], total.shape, compute_dtype(total))
                noised = (upcast(total) + self.noise_std * noise) / batch_size
                out.append(noised.astype(total.dtype))
            index += leaf is not None
        return (
            jax.tree.unflatten(treedef, out),
            DifferentiallyPrivateAggregateState(rng_key=new_key),
        )


def _is_traced(value: Any) -> bool:
    return isinstance(value, jax.core.Tracer)


def _noise_std(l2_norm_clip: Any, clip: jax.Array, noise_multiplier: Any) -> jax.Array:
    r""":math:`\sigma C`, the noise's standard deviation, as optax computes it: the product of
    the values given (in float64 for Python numbers) rounded once to float32; 0 when
    :math:`\sigma = 0`, whatever :math:`C` (optax's is NaN for :math:`C = \infty`)."""
    sigma = hyper(noise_multiplier, "noise_multiplier", schedule=False, low=0.0)
    if _is_traced(clip) or _is_traced(sigma):
        return jnp.where(sigma == 0, 0.0, clip * sigma)
    if float(sigma) == 0:
        return jnp.zeros([], jnp.float32)
    product = np.float32(np.float64(l2_norm_clip) * np.float64(noise_multiplier))
    if not np.isfinite(product):
        raise ValueError(
            "l2_norm_clip * noise_multiplier, the standard deviation of the noise, must be "
            f"finite in float32, got {l2_norm_clip} * {noise_multiplier}"
        )
    return jnp.asarray(product)


def _aggregate(l2_norm_clip: Any, noise_multiplier: Any, key: jax.Array):
    clip = _clip_bound(l2_norm_clip, "l2_norm_clip")
    noise_std = _noise_std(l2_norm_clip, clip, noise_multiplier)
    return DifferentiallyPrivateAggregate(l2_norm_clip=clip, noise_std=noise_std, key=key)


@suggest_keywords
def differentially_private_aggregate(
    l2_norm_clip: Any,
    noise_multiplier: Any,
    key: Any = None,
    *,
    seed: int | None = None,
) -> DifferentiallyPrivateAggregate:
    r"""Aggregate per-example gradients as DP-SGD does: clip each example's gradient to global
    norm ``l2_norm_clip``, sum, add Gaussian noise and divide by the batch size.

    .. math::
        u = \frac{1}{B}\Big(\sum_{i=1}^{B} g_i \min\!\Big(1, \frac{C}{\lVert g_i\rVert_2}\Big)
        + \sigma C\, \xi\Big),\quad \xi \sim \mathcal N(0, I).

    The updates must be per-example gradients: every leaf has the batch of :math:`B` examples
    on axis 0 (``jax.vmap`` of ``jax.grad`` gives them); the result has no batch axis. Put
    this transformation first in a chain; gradient accumulation (``MultiSteps``,
    ``apply_every``) does not preserve its privacy accounting.

    References:
      Abadi et al., 2016, `Deep Learning with Differential Privacy
      <https://arxiv.org/abs/1607.00133>`_.

    Args:
      l2_norm_clip: :math:`C \ge 0`, the largest L2 norm an example's gradient keeps
        (``inf``: no clipping).
      noise_multiplier: :math:`\sigma \ge 0`, the noise's standard deviation over :math:`C`.
      key: an int or a JAX PRNG key for the noise. ``None`` warns and uses key 0, as optax.
      seed: deprecated (as in optax); an int used as ``key``.

    Returns:
      The transformation; its state holds the key of the next step's noise.

    Raises:
      ValueError: a negative or NaN ``l2_norm_clip`` or ``noise_multiplier``; both ``key``
        and ``seed``; in ``update``, a leaf without the batch axis of the others.
      TypeError: a ``key`` that is neither an int nor a PRNG key.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> tx = optim.contrib.differentially_private_aggregate(2.0, 0.0, key=0)
      >>> per_example = {"w": jnp.array([[0.0, 4.0], [1.0, 0.0]])}  # norms 4 and 1
      >>> updates, state = tx.update(per_example, tx.init({"w": jnp.zeros(2)}))
      >>> print(updates["w"])  # ((0, 2) + (1, 0)) / 2: the first example clipped to norm 2
      [0.5 1. ]
    """
    return _aggregate(l2_norm_clip, noise_multiplier, _resolve_key(key, seed))


@suggest_keywords
def dpsgd(
    learning_rate: ScalarOrSchedule,
    l2_norm_clip: Any,
    noise_multiplier: Any,
    seed: int,
    momentum: Any = None,
    nesterov: bool = False,
) -> Chain:
    r"""DP-SGD (Abadi et al., 2016): SGD on clipped, noised per-example gradients.

    .. math::
        \tilde g_t = \frac{1}{B}\Big(\sum_{i=1}^{B} g_{t,i}
        \min\!\Big(1, \frac{C}{\lVert g_{t,i}\rVert_2}\Big) + \sigma C\, \xi_t\Big),\quad
        m_t = \tilde g_t + \mu\, m_{t-1},\quad \theta_{t+1} = \theta_t - \eta_t m_t

    (:math:`m_t = \tilde g_t` without ``momentum``; with ``nesterov`` the step is
    :math:`\tilde g_t + \mu m_t`). The update takes per-example gradients: every leaf with the
    batch on axis 0, as ``differentially_private_aggregate``, which this chains with ``trace``
    and ``scale_by_learning_rate``.

    References:
      Abadi et al., 2016, `Deep Learning with Differential Privacy
      <https://arxiv.org/abs/1607.00133>`_.

    Args:
      learning_rate: :math:`\eta \ge 0`, a number or a schedule.
      l2_norm_clip: :math:`C`, the largest L2 norm an example's gradient keeps.
      noise_multiplier: :math:`\sigma`, the noise's standard deviation over :math:`C`.
      seed: an int (or a JAX PRNG key) for the noise.
      momentum: :math:`\mu \ge 0`, or ``None`` for no momentum.
      nesterov: Nesterov momentum (needs a ``momentum``; optax ignores the flag without one).

    Returns:
      The chain ``(differentially_private_aggregate, trace or identity,
      scale_by_learning_rate)``, with optax's state structure.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> def loss(w, x):
      ...     return jnp.sum((w - x) ** 2)
      >>> w, batch = jnp.zeros(2), jnp.array([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
      >>> tx = optim.contrib.dpsgd(0.1, l2_norm_clip=1.0, noise_multiplier=0.5, seed=0)
      >>> state = tx.init(w)
      >>> per_example = jax.vmap(jax.grad(loss), in_axes=(None, 0))(w, batch)
      >>> updates, state = tx.update(per_example, state, w)
      >>> updates.shape
      (2,)
    """
    try:
        key = _as_key(seed)
    except (TypeError, ValueError):
        raise TypeError(f"seed must be an int (or a jax.random key), got {seed!r}") from None
    return chain(
        _aggregate(l2_norm_clip, noise_multiplier, key),
        _momentum(momentum, nesterov),  # as sgd's: trace, or identity for None
        scale_by_learning_rate(learning_rate),
    )
