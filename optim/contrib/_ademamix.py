"""AdEMAMix (Pagliardini et al., 2024): Adam with a second, slow momentum mixed in."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from optim._hyper import decay, decay_at, dtype_option, nonnegative, value_at
from optim._keywords import suggest_keywords
from optim._numerics import (
    adaptive_step,
    cast_like_grads,
    debias_tree,
    ema_update,
    ema_update_sq,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass
from optim._tree import PyTree, full_like, map_arrays, safe_increment, upcast, zero_count
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain, check_updates
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate


class ScaleByAdemamixState(NamedTuple):
    """Step counts (of the fast EMA and second moment; of the slow EMA) and the moments."""

    count: jax.Array
    count_m2: jax.Array
    m1: PyTree
    m2: PyTree
    nu: PyTree


@pytree_dataclass
class ScaleByAdemamix(Transformation):
    r"""AdEMAMix (Pagliardini et al., 2024, "The AdEMAMix Optimizer: Better, Faster, Older",
    Algorithm 1).

    .. math::
        m^{(1)}_t = \beta_1 m^{(1)}_{t-1} + (1-\beta_1) g_t,\quad
        m^{(2)}_t = \beta_3(t) m^{(2)}_{t-1} + (1-\beta_3(t)) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2,\\
        u_t = \frac{m^{(1)}_t / (1-\beta_1^t) + \alpha(t)\, m^{(2)}_t}
                   {\sqrt{v_t / (1-\beta_2^t) + \epsilon_{root}} + \epsilon}.

    The slow EMA :math:`m^{(2)}` is not bias-corrected, so it fills slowly. :math:`\beta_3`
    and :math:`\alpha` may be schedules (the paper warms both up), evaluated at the number of
    previous updates (``count_m2``).
    """

    b1: Any = decay()
    b2: Any = decay()
    b3: Any = decay(schedule=True)
    alpha: Any = nonnegative(schedule=True)
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    mu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAdemamixState:
        return ScaleByAdemamixState(
            count=zero_count(),
            count_m2=zero_count(),
            m1=full_like(params, 0.0, self.mu_dtype),
            m2=full_like(params, 0.0, self.mu_dtype),
            nu=full_like(params, 0.0),
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.m1)
        b1, b2 = self.b1, self.b2
        b3 = decay_at(self.b3, state.count_m2)
        alpha = value_at(self.alpha, state.count_m2)
        # Numerical edges as in scale_by_adam: bounded gradients, 0 for 0/0, finite gradients.
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        m1 = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.m1)
        m2 = map_arrays(lambda g, m: ema_update(g, m, b3), grads, state.m2)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, b2), grads, state.nu)
        count = safe_increment(state.count)
        out = map_arrays(
            lambda fast, slow, v: adaptive_step(fast + alpha * slow, v, self.eps, self.eps_root),
            debias_tree(m1, b1, count),
            m2,
            debias_tree(nu, b2, count),
        )
        new_state = ScaleByAdemamixState(
            count=count,
            count_m2=safe_increment(state.count_m2),
            m1=store_like(m1, state.m1),
            m2=store_like(m2, state.m2),
            nu=store_like(nu, state.nu),
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_ademamix(
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 6.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
) -> ScaleByAdemamix:
    """Rescale updates by AdEMAMix's mixed moments (``optax.contrib.scale_by_ademamix``).

    ``b3`` and ``alpha`` may be schedules. As in optax, ``alpha`` defaults to 6 here and to 5
    in ``ademamix``.
    """
    return ScaleByAdemamix(
        b1=b1,
        b2=b2,
        b3=b3,
        alpha=alpha,
        eps=eps,
        eps_root=eps_root,
        mu_dtype=mu_dtype,
    )


@suggest_keywords
def ademamix(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 5.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""AdEMAMix with decoupled weight decay (Pagliardini et al., 2024).

    .. math:: \theta_{t+1} = \theta_t - \eta_t (u_t + \lambda\theta_t)

    with :math:`u_t` from ``scale_by_ademamix`` and the decay applied where ``mask`` is True.
    """
    return chain(
        scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
