r"""Layer-wise trust ratios: LARS, LAMB and Fromage scale each leaf's step by its norms.

Each parameter array (a "layer") gets a step proportional to its own norm,
:math:`\lVert\theta\rVert / \lVert u\rVert`, so that layers of different scales move by
similar relative amounts.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import hyper, is_schedule, nonnegative, value_at
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass, static, with_fields
from optim._tree import PyTree, check_params, map_arrays, upcast, zero_count
from optim._types import ScalarOrSchedule
from optim.base import Chain, EmptyState, Transformation, chain, check_updates, require_params
from optim.numerics import safe_norm
from optim.optimizers._adam import scale_by_adam
from optim.transforms._accumulation import trace
from optim.transforms._adding import AddDecayedWeights, add_decayed_weights
from optim.transforms._masking import masked
from optim.transforms._scaling import learning_rate_hyper, scale_by_learning_rate

# The state of scale_by_trust_ratio: empty, as in optax (where it is an alias too).
ScaleByTrustRatioState = EmptyState


@pytree_dataclass
class ScaleByTrustRatio(Transformation):
    r"""Scale each leaf by its trust ratio (You et al., 2017, "Large Batch Training of
    Convolutional Networks").

    .. math:: u_t = g_t \cdot c\,\frac{\max(\lVert\theta_t\rVert, n)}{\max(\lVert g_t\rVert, n)
        + \epsilon}

    per leaf, with :math:`u_t = g_t` where either norm is 0 (:math:`n` = ``min_norm``,
    :math:`c` = ``trust_coefficient``; Frobenius norms over the whole leaf).

    Attributes:
      min_norm: floor :math:`n >= 0` of both norms.
      trust_coefficient: :math:`c >= 0`, multiplying the ratio.
      eps: :math:`\epsilon >= 0`, added to the update's norm in the denominator.

    The fields are the arguments of :func:`optim.scale_by_trust_ratio`, which builds it.
    """

    min_norm: Any = nonnegative()
    trust_coefficient: Any = nonnegative()
    eps: Any = nonnegative()

    def init(self, params: PyTree) -> ScaleByTrustRatioState:
        check_params(params)
        return ScaleByTrustRatioState()

    def _scale(self, g: jax.Array, p: jax.Array) -> jax.Array:
        g32 = upcast(g)
        param_norm = safe_norm(upcast(p), self.min_norm)
        update_norm = safe_norm(g32, self.min_norm)
        degenerate = (param_norm == 0.0) | (update_norm == 0.0)
        # The division sees inf where its result is discarded: x / 0 there would make the
        # gradient through the jnp.where 0 * inf = NaN (an all-zero gradient leaf, eps = 0).
        # Only the divisor is selected, so that XLA compiles optax's quotient (same bits).
        denominator = jnp.where(degenerate, jnp.inf, update_norm + self.eps)
        ratio = jnp.where(degenerate, 1.0, self.trust_coefficient * param_norm / denominator)
        return g32 * ratio

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "scale_by_trust_ratio")
        check_updates(updates, params, "params")
        return cast_like_grads(map_arrays(self._scale, updates, params), updates), state


@suggest_keywords
def scale_by_trust_ratio(
    min_norm: Any = 0.0, trust_coefficient: Any = 1.0, eps: Any = 0.0
) -> ScaleByTrustRatio:
    r"""Scale updates by the layer-wise trust ratio (``optax.scale_by_trust_ratio``).

    .. math:: u_t = g_t \cdot c\,\frac{\max(\lVert\theta_t\rVert, n)}{\max(\lVert g_t\rVert, n)
        + \epsilon}

    per leaf (Frobenius norms over the whole leaf), with :math:`u_t = g_t` where either norm is 0.

    Args:
      min_norm: floor :math:`n >= 0` of both norms.
      trust_coefficient: :math:`c >= 0`, multiplying the ratio.
      eps: :math:`\epsilon >= 0`, added to the update's norm in the denominator.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves; its state is empty); its ``update`` needs ``params`` and raises ``ValueError``
      without them.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_trust_ratio()
      >>> params = {"w": jnp.array([3.0, 4.0])}
      >>> updates, _ = tx.update({"w": jnp.array([0.6, -0.8])}, tx.init(params), params)
      >>> print(updates["w"])
      [ 3. -4.]

    References:
      You, Gitman & Ginsburg, 2017, https://arxiv.org/abs/1708.03888
    """
    return ScaleByTrustRatio(
        min_norm=min_norm,
        trust_coefficient=trust_coefficient,
        eps=eps,
    )


@suggest_keywords
def lars(
    learning_rate: ScalarOrSchedule,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = True,
    trust_coefficient: Any = 0.001,
    eps: Any = 0.0,
    trust_ratio_mask: Any = True,
    momentum: Any = 0.9,
    nesterov: bool = False,
) -> Chain:
    r"""LARS (You et al., 2017, "Large Batch Training of Convolutional Networks").

    .. math:: v_t = g_t + \lambda\theta_t,\quad
        m_t = \mu m_{t-1} - \eta_t\, c \frac{\lVert\theta_t\rVert}{\lVert v_t\rVert + \epsilon}
        v_t,\quad \theta_{t+1} = \theta_t + m_t

    with the decay on the leaves ``weight_decay_mask`` selects and the trust ratio on those
    ``trust_ratio_mask`` selects.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      weight_decay: :math:`\lambda >= 0`, a number or a schedule: :math:`\lambda\theta_t` is
        added to the gradient before the trust ratio (coupled, L2-style decay).
      weight_decay_mask: where weight decay applies: a pytree of booleans with the structure
        of the params (or a prefix of it), or a function ``params -> such a pytree``; True
        (the default): every leaf.
      trust_coefficient: :math:`c >= 0`, multiplying the trust ratio.
      eps: :math:`\epsilon >= 0`, added to the norm of :math:`v_t` in the denominator.
      trust_ratio_mask: where the trust ratio applies: a pytree of booleans with the structure
        of the params (or a prefix of it), or a function ``params -> such a pytree``; True
        (the default): every leaf. Leaves left out take the step without the ratio.
      momentum: the momentum decay :math:`\mu >= 0` (a number, not ``None``), applied to
        the learning-rate-scaled steps; 0 disables it.
      nesterov: use Nesterov momentum: the step is :math:`s_t + \mu m_t` with :math:`s_t`
        the scaled step, in place of :math:`m_t`.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.lars(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.99984187 -1.9998419 ]

    References:
      You, Gitman & Ginsburg, 2017, https://arxiv.org/abs/1708.03888
    """
    return chain(
        add_decayed_weights(weight_decay, mask=weight_decay_mask),
        masked(
            scale_by_trust_ratio(trust_coefficient=trust_coefficient, eps=eps), trust_ratio_mask
        ),
        scale_by_learning_rate(learning_rate),
        trace(decay=hyper(momentum, "momentum", schedule=False, low=0.0), nesterov=nesterov),
    )


@suggest_keywords
def lamb(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Chain:
    r"""LAMB (You et al., 2020, "Large Batch Optimization for Deep Learning: Training BERT in
    76 Minutes"): Adam's step plus decoupled weight decay, scaled per leaf by its trust ratio.

    .. math:: r_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon) + \lambda\theta_t,
        \quad \theta_{t+1} = \theta_t - \eta_t \frac{\lVert\theta_t\rVert}{\lVert r_t\rVert} r_t

    with the decay only where ``mask`` is True; see :func:`optim.scale_by_adam`.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      weight_decay: strength :math:`\lambda >= 0` of the decoupled weight decay, a number or a
        schedule, added to Adam's direction before the trust ratio.
      mask: where weight decay applies: a pytree of booleans with the structure of the
        params (or a prefix of it), or a function ``params -> such a pytree``; True leaves are
        decayed, False leaves are not. ``None``: every leaf is decayed.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.lamb(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.8418861 -1.8418862]

    References:
      You et al., 2020, https://arxiv.org/abs/1904.00962
    """
    return chain(
        scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root),
        add_decayed_weights(weight_decay=weight_decay, mask=mask),
        scale_by_trust_ratio(),
        scale_by_learning_rate(learning_rate),
    )


@pytree_dataclass
class _FromageFactor:
    r"""Fromage's step :math:`\eta/\sqrt{1+\eta^2}` or decay :math:`1/\sqrt{1+\eta^2} - 1`.

    A schedule when the learning rate is one (it then takes the step count).
    """

    learning_rate: ScalarOrSchedule
    decay: bool = static(False)

    def __call__(self, count: jax.Array) -> jax.Array:
        lr = value_at(self.learning_rate, count)
        shrink = 1 / (1 + lr**2) ** 0.5
        return shrink - 1 if self.decay else lr * shrink


@suggest_keywords
def fromage(learning_rate: ScalarOrSchedule, min_norm: Any = 1e-6) -> Chain:
    r"""Fromage (Bernstein et al., 2020, "On the distance between two neural networks and the
    stability of learning").

    .. math:: \theta_{t+1} = \frac{1}{\sqrt{1+\eta_t^2}}\left(\theta_t - \eta_t
        \frac{\lVert\theta_t\rVert}{\lVert g_t\rVert} g_t\right)

    per leaf (norms floored at ``min_norm``), built as optax builds it: the trust ratio, the
    learning rate :math:`\eta_t/\sqrt{1+\eta_t^2}` and a (negative) weight decay
    :math:`1/\sqrt{1+\eta_t^2} - 1`.

    Args:
      learning_rate: :math:`\eta_t >= 0`, a number or a schedule ``count -> number``
        (``None`` raises ``TypeError``).
      min_norm: floor (>= 0) of both norms of the trust ratio.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.fromage(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.837708  -1.8327452]

    References:
      Bernstein et al., 2020, https://arxiv.org/abs/2002.03432
    """
    lr = learning_rate_hyper(learning_rate)
    step, decay = _FromageFactor(lr), _FromageFactor(lr, decay=True)
    if isinstance(learning_rate, (int, float)):
        # optax computes both from the Python number, in double precision: 1/sqrt(1 + lr^2) - 1
        # cancels most digits of the float32 quotient (1e-3 relative for lr = 0.01).
        shrink = 1 / (1 + float(learning_rate) ** 2) ** 0.5
        step, decay = np.float32(float(learning_rate) * shrink), np.float32(shrink - 1)
    elif not is_schedule(lr):  # constants, so that the states are optax's (no step counts)
        step, decay = step(zero_count()), decay(zero_count())
    return chain(
        scale_by_trust_ratio(min_norm),
        scale_by_learning_rate(step),
        # The decay is negative, which the field's constraint rejects as a user argument.
        with_fields(AddDecayedWeights(0.0), weight_decay=decay),
    )
