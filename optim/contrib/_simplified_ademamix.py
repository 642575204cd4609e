"""Simplified AdEMAMix (Morwani et al., 2025): one accumulated momentum plus the gradient."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from optim._hyper import hyper_field, nonnegative, value_at
from optim._keywords import suggest_keywords
from optim._numerics import (
    adaptive_step,
    cast_like_grads,
    debias_tree,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    full_like,
    map_arrays,
    reject_complex,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain, check_updates
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate

__all__ = [
    "ScaleBySimplifiedAdEMAMixState",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
]


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    r"""The state of :func:`optim.contrib.scale_by_simplified_ademamix`.

    Attributes:
      t: the number of updates so far (int32).
      m: the momentum :math:`m` (a sum of gradients without the :math:`1-\beta_1` factor), a
        pytree like the params.
      n: the second moment :math:`n`, a pytree like the params.
    """

    t: jax.Array
    m: PyTree
    n: PyTree


@pytree_dataclass
class ScaleBySimplifiedAdemamix(Transformation):
    r"""Simplified AdEMAMix (Morwani et al., 2025, "Connections between
    Schedule-Free Optimizers, AdEMAMix, and Accelerated SGD Variants").

    .. math::
        m_t = \beta_1 m_{t-1} + g_t,\quad
        n_t = g_t^2 + \beta_2 (n_{t-1} - g_t^2),\quad
        u_t = \frac{m_t + \alpha(t)\, g_t}{\sqrt{n_t / (1 - \beta_2^t) + \epsilon_{root}}
              + \epsilon}.

    :math:`m` sums gradients without the :math:`1-\beta_1` factor (a long memory at
    :math:`\beta_1 = 0.99`) and is not bias-corrected; :math:`n` is Adam's second moment,
    written as optax's interpolation. :math:`\alpha` may be a schedule (evaluated at the
    number of previous updates). Real parameters only (optax squares :math:`g` without
    conjugating).
    """

    b1: Any = hyper_field(low=0.0, high=1.0, high_open=True)
    b2: Any = hyper_field(low=0.0, high=1.0, high_open=True)
    alpha: Any = nonnegative(schedule=True)
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()

    def init(self, params: PyTree) -> ScaleBySimplifiedAdEMAMixState:
        reject_complex(params, "simplified_ademamix", "its second moment squares g")
        return ScaleBySimplifiedAdEMAMixState(
            t=zero_count(), m=full_like(params), n=full_like(params)
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.m)
        alpha = value_at(self.alpha, state.t)
        # Numerical edges as in scale_by_adam: bounded gradients, 0 for 0/0.
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        m = map_arrays(lambda g, m: g + self.b1 * upcast(m), grads, state.m)
        n = map_arrays(lambda g, n: g * g + self.b2 * (upcast(n) - g * g), grads, state.n)
        t = safe_increment(state.t)
        out = map_arrays(
            lambda g, m, n: adaptive_step(m + alpha * g, n, self.eps, self.eps_root),
            grads,
            m,
            debias_tree(n, self.b2, t),
        )
        new_state = ScaleBySimplifiedAdEMAMixState(
            t=t, m=store_like(m, state.m), n=store_like(n, state.n)
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_simplified_ademamix(
    b1: Any = 0.99,
    b2: Any = 0.95,
    alpha: Any = 0.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
) -> ScaleBySimplifiedAdemamix:
    r"""Rescale updates by Simplified AdEMAMix (``optax.contrib.scale_by_simplified_ademamix``).

    .. math::
        m_t = \beta_1 m_{t-1} + g_t,\quad
        n_t = g_t^2 + \beta_2 (n_{t-1} - g_t^2),\quad
        u_t = \frac{m_t + \alpha(t)\, g_t}{\sqrt{n_t / (1 - \beta_2^t) + \epsilon_{root}}
              + \epsilon}.

    :math:`m` is not bias-corrected. Real parameters only (complex ones are rejected).

    Args:
      b1: :math:`\beta_1`, the momentum's decay, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the second moment, in ``[0, 1)``.
      alpha: :math:`\alpha \ge 0`, the weight of the current gradient: a number or a schedule
        ``count -> float`` (evaluated at the number of previous updates).
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment.
      eps_root: :math:`\epsilon_{root} \ge 0`, added to the second moment inside the root.

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.ScaleBySimplifiedAdEMAMixState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_simplified_ademamix()
      >>> state = tx.init(jnp.zeros(2))
      >>> updates, state = tx.update(jnp.array([0.5, -0.5]), state)
      >>> print([round(float(u), 4) for u in updates])  # m_1 / |g_1| = sign(g)
      [1.0, -1.0]

    References:
      Morwani et al., 2025, `Connections between Schedule-Free Optimizers, AdEMAMix, and
      Accelerated SGD Variants <https://arxiv.org/abs/2502.02431>`_.
    """
    return ScaleBySimplifiedAdemamix(
        b1=b1,
        b2=b2,
        alpha=alpha,
        eps=eps,
        eps_root=eps_root,
    )


@suggest_keywords
def simplified_ademamix(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.99,
    b2: Any = 0.95,
    alpha: Any = 0.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""Simplified AdEMAMix with decoupled weight decay (Morwani et al., 2025):
    :math:`\theta_{t+1} = \theta_t - \eta_t (u_t + \lambda\theta_t)`, :math:`u_t` from
    :func:`optim.contrib.scale_by_simplified_ademamix`, the decay where ``mask`` is True.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float``.
      b1: :math:`\beta_1`, the momentum's decay, in ``[0, 1)``.
      b2: :math:`\beta_2`, decay rate of the second moment, in ``[0, 1)``.
      alpha: :math:`\alpha \ge 0`, the weight of the current gradient: a number or a schedule.
      eps: :math:`\epsilon \ge 0`, added to the root of the second moment.
      eps_root: :math:`\epsilon_{root} \ge 0`, added to the second moment inside the root.
      weight_decay: :math:`\lambda`, the decoupled weight decay rate (0: none).
      mask: a pytree of booleans with the structure of the params (or a prefix of it), or a
        function ``params -> such a pytree``: where True, weight decay applies (``None``: on
        every leaf).

    Returns:
      The :class:`optim.GradientTransformation` chain ``(scale_by_simplified_ademamix,
      add_decayed_weights, scale_by_learning_rate)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.simplified_ademamix(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print([round(float(w), 4) for w in optim.apply_updates(params, updates)["w"]])
      [0.9, -1.9]

    References:
      Morwani et al., 2025, `Connections between Schedule-Free Optimizers, AdEMAMix, and
      Accelerated SGD Variants <https://arxiv.org/abs/2502.02431>`_.
    """
    return chain(
        scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
