"""COCOB-Backprop (Orabona & Tommasi, 2017): learning-rate-free training by coin betting."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from optim._hyper import nonnegative, positive
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, store_like
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_same_structure,
    float_copy,
    full_like,
    map_arrays,
    reject_complex,
    upcast,
)
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, chain, check_updates, require_params
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate

__all__ = ["COCOBState", "cocob", "scale_by_cocob"]


class COCOBState(NamedTuple):
    r"""The state of :func:`optim.contrib.scale_by_cocob`: per coordinate, pytrees like the
    params.

    Attributes:
      init_particles: :math:`w_1`, the parameters at ``init`` (the bets start from them).
      cumulative_gradients: :math:`\theta_t`, minus the sum of the gradients so far.
      scale: :math:`L_t`, the largest gradient magnitude so far (starts at ``eps``).
      subgradients: :math:`G_t`, the sum of the gradient magnitudes so far.
      reward: :math:`R_t`, the reward of the bets so far (non-negative).
    """

    init_particles: PyTree
    cumulative_gradients: PyTree
    scale: PyTree
    subgradients: PyTree
    reward: PyTree


@pytree_dataclass
class ScaleByCocob(Transformation):
    r"""COCOB-Backprop (Orabona & Tommasi, 2017, "Training Deep Networks without Learning
    Rates Through Coin Betting", Algorithm 2), per coordinate, with :math:`L_0 = \epsilon`:

    .. math::
        L_t = \max(L_{t-1}, |g_t|),\quad G_t = G_{t-1} + |g_t|,\quad
        R_t = \max\big(R_{t-1} - g_t (w_t - w_1), 0\big),\quad
        \theta_t = \theta_{t-1} - g_t,\\
        w_{t+1} = w_1 + \frac{\theta_t}{L_t \max(G_t + L_t, \alpha L_t)}\,(L_t + R_t),\quad
        u_t = w_{t+1} - w_t.

    The update is the bet minus the current parameters, so it already points downhill (no
    sign flip follows). Real parameters only (it compares magnitudes per coordinate).
    """

    alpha: Any = nonnegative()
    eps: Any = positive()

    def init(self, params: PyTree) -> COCOBState:
        reject_complex(params, "cocob", "it takes maxima of per-coordinate magnitudes")
        return COCOBState(
            init_particles=float_copy(params),
            cumulative_gradients=full_like(params),
            scale=full_like(params, self.eps),
            subgradients=full_like(params),
            reward=full_like(params),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "cocob")
        check_updates(updates, state.scale)
        check_same_structure(params, state.init_particles, "params", "the optimizer state")
        grads = map_arrays(upcast, updates)
        scale = map_arrays(lambda g, L: jnp.maximum(upcast(L), jnp.abs(g)), grads, state.scale)
        subgradients = map_arrays(lambda g, G: upcast(G) + jnp.abs(g), grads, state.subgradients)
        reward = map_arrays(
            lambda g, R, p, p0: jnp.maximum(upcast(R) - g * (upcast(p) - p0), 0),
            grads,
            state.reward,
            params,
            state.init_particles,
        )
        cumulative = map_arrays(lambda g, C: upcast(C) - g, grads, state.cumulative_gradients)

        def step(p, p0, C, L, G, R):
            return -upcast(p) + (p0 + C / (L * jnp.maximum(G + L, self.alpha * L)) * (L + R))

        out = map_arrays(
            step, params, state.init_particles, cumulative, scale, subgradients, reward
        )
        new_state = COCOBState(
            init_particles=state.init_particles,
            cumulative_gradients=store_like(cumulative, state.cumulative_gradients),
            scale=store_like(scale, state.scale),
            subgradients=store_like(subgradients, state.subgradients),
            reward=store_like(reward, state.reward),
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_cocob(alpha: Any = 100.0, eps: Any = 1e-8) -> ScaleByCocob:
    r"""COCOB-Backprop's update (``optax.contrib.scale_by_cocob``), per coordinate, with
    :math:`L_0 = \epsilon`:

    .. math::
        L_t = \max(L_{t-1}, |g_t|),\quad G_t = G_{t-1} + |g_t|,\quad
        R_t = \max\big(R_{t-1} - g_t (w_t - w_1), 0\big),\quad
        \theta_t = \theta_{t-1} - g_t,\\
        w_{t+1} = w_1 + \frac{\theta_t}{L_t \max(G_t + L_t, \alpha L_t)}\,(L_t + R_t),\quad
        u_t = w_{t+1} - w_t.

    The update is the bet minus the current parameters, so it already points downhill (no
    sign flip follows). ``update`` needs the params. Real parameters only.

    Args:
      alpha: :math:`\alpha \ge 0`, bounds the fraction of the wealth bet in the first steps
        (through :math:`\max(G_t + L_t, \alpha L_t)`).
      eps: :math:`\epsilon > 0`, the initial scale :math:`L_0`.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.COCOBState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.scale_by_cocob()
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> updates, state = tx.update(jnp.array([0.5, -0.5]), state, params)
      >>> print([round(float(u), 4) for u in updates])
      [-0.01, 0.01]

    References:
      Orabona & Tommasi, 2017, `Training Deep Networks without Learning Rates Through Coin
      Betting <https://arxiv.org/abs/1705.07795>`_.
    """
    return ScaleByCocob(
        alpha=alpha,
        eps=eps,
    )


@suggest_keywords
def cocob(
    learning_rate: ScalarOrSchedule = 1.0,
    alpha: Any = 100.0,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""COCOB-Backprop (Orabona & Tommasi, 2017) on :math:`\eta_t (g_t + \lambda\theta_t)`
    (weight decay :math:`\lambda` where ``mask`` is True), as optax chains it: the learning
    rate scales the gradients that enter the bet, with no sign flip.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float`` that scales
        the gradients before the bet (1: plain COCOB).
      alpha: :math:`\alpha \ge 0`, bounds the fraction of the wealth bet in the first steps.
      eps: :math:`\epsilon > 0`, the initial scale :math:`L_0`.
      weight_decay: :math:`\lambda`, the weight decay added to the gradients (0: none).
      mask: a pytree of booleans with the structure of the params (or a prefix of it), or a
        function ``params -> such a pytree``: where True, weight decay applies (``None``: on
        every leaf).

    Returns:
      The :class:`optim.GradientTransformation` chain ``(add_decayed_weights,
      scale_by_learning_rate without sign flip, scale_by_cocob)``; ``update`` needs the
      params.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> tx = optim.contrib.cocob()
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # from 29.0: the bets grow with the wealth
      28.5705

    References:
      Orabona & Tommasi, 2017, `Training Deep Networks without Learning Rates Through Coin
      Betting <https://arxiv.org/abs/1705.07795>`_.
    """
    return chain(
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate, flip_sign=False),
        scale_by_cocob(alpha, eps),
    )
