r"""Optimistic gradient methods for saddle-point (min-max) problems: OGD and optimistic Adam.

They extrapolate with the previous gradient, :math:`g_t + \beta (g_t - g_{t-1})`, which damps
the cycling of plain gradient descent-ascent on games such as GANs.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import hyper, hyper_field, is_schedule
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, store_like
from optim._pytree import pytree_dataclass
from optim._tree import PyTree, full_like, map_arrays, upcast
from optim._types import ScalarOrSchedule
from optim._warnings import warn_user
from optim.base import Chain, Transformation, chain, check_updates
from optim.optimizers._adam import scale_by_adam
from optim.transforms._scaling import learning_rate_hyper, scale_by_learning_rate


class ScaleByOptimisticGradientState(NamedTuple):
    """Whether no step was taken yet, and the previous incoming update.

    Attributes:
      is_initial_step: a boolean scalar array, True until the first update.
      previous_gradient: the previous incoming update :math:`g_{t-1}`, a pytree like the
        params.
    """

    is_initial_step: jax.Array
    previous_gradient: PyTree


@pytree_dataclass
class ScaleByOptimisticGradient(Transformation):
    r"""Generalized optimistic gradient (Mokhtari, Ozdaglar & Pattathil, 2020, "A Unified
    Analysis of Extra-gradient and Optimistic Gradient Methods for Saddle Point Problems:
    Proximal Point Approach").

    .. math:: u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1},

    with :math:`g_0 = g_1` (the first step is :math:`\alpha g_1`, as in optax).

    Attributes:
      alpha: :math:`\alpha`, the weight of the current update (a number or an array).
      beta: :math:`\beta`, the weight of the extrapolation :math:`g_t - g_{t-1}` (a number or
        an array; 0 gives plain :math:`\alpha g_t`).

    The fields are the arguments of :func:`optim.scale_by_optimistic_gradient`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    alpha: Any = hyper_field()
    beta: Any = hyper_field()

    def init(self, params: PyTree) -> ScaleByOptimisticGradientState:
        return ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(True), previous_gradient=full_like(params)
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.previous_gradient)

        def extrapolate(g: jax.Array, previous: jax.Array) -> jax.Array:
            g = upcast(g)
            previous = jnp.where(state.is_initial_step, g, upcast(previous))
            return (self.alpha + self.beta) * g - self.beta * previous

        out = map_arrays(extrapolate, updates, state.previous_gradient)
        new_state = ScaleByOptimisticGradientState(
            is_initial_step=jnp.array(False),
            previous_gradient=store_like(updates, state.previous_gradient),
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_optimistic_gradient(alpha: Any = 1.0, beta: Any = 1.0) -> ScaleByOptimisticGradient:
    r"""Extrapolate with the previous update (``optax.scale_by_optimistic_gradient``).

    .. math:: u_t = (\alpha + \beta)\, g_t - \beta\, g_{t-1},

    with :math:`g_0 = g_1` (the first step is :math:`\alpha g_1`, as in optax).

    Args:
      alpha: :math:`\alpha`, the weight of the current update (a number or an array).
      beta: :math:`\beta`, the weight of the extrapolation :math:`g_t - g_{t-1}` (a number or
        an array; 0 gives plain :math:`\alpha g_t`).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByOptimisticGradientState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_optimistic_gradient()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.5 -0.5]
      >>> updates, state = tx.update(jnp.array([1.0, -1.0]), state)
      >>> print(updates)
      [ 1.5 -1.5]

    References:
      Mokhtari, Ozdaglar & Pattathil, 2020, https://arxiv.org/abs/1901.08511
    """
    return ScaleByOptimisticGradient(alpha=alpha, beta=beta)


@suggest_keywords
def optimistic_gradient_descent(
    learning_rate: ScalarOrSchedule, alpha: Any = 1.0, beta: Any = 1.0
) -> Chain:
    r"""Optimistic gradient descent (Mokhtari, Ozdaglar & Pattathil, 2020).

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big((\alpha+\beta) g_t - \beta g_{t-1}\big)

    For saddle-point problems (games, GANs): the extrapolation damps the cycling of plain
    gradient descent-ascent.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      alpha: :math:`\alpha`, the weight of the current update (a number or an array).
      beta: :math:`\beta`, the weight of the extrapolation :math:`g_t - g_{t-1}` (a number or
        an array; 0 gives plain :math:`\alpha g_t`).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.optimistic_gradient_descent(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.95 -1.95]

    References:
      Mokhtari, Ozdaglar & Pattathil, 2020, https://arxiv.org/abs/1901.08511
    """
    return chain(
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


@suggest_keywords
def optimistic_adam_v2(
    learning_rate: ScalarOrSchedule,
    *,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-08,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
) -> Chain:
    r"""Optimistic Adam (Daskalakis et al., 2018, "Training GANs with Optimism").

    .. math:: r_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon),\quad
        \theta_{t+1} = \theta_t - \eta_t\big((\alpha+\beta) r_t - \beta r_{t-1}\big)

    with Nesterov momentum in :math:`\hat m_t` by default; see :func:`optim.scale_by_adam`. The
    deprecated ``optimistic_adam(lr, o)`` is ``optimistic_adam_v2(1.0, alpha=lr, beta=o)``.
    Every argument but ``learning_rate`` is keyword-only.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      alpha: :math:`\alpha`, the weight of the current update (a number or an array).
      beta: :math:`\beta`, the weight of the extrapolation :math:`g_t - g_{t-1}` (a number or
        an array; 0 gives plain :math:`\alpha g_t`).
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
        such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
        (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
        wider whatever it is.
      nesterov: Nesterov momentum in :math:`\hat m_t` (True by default, as in
        optax; see :func:`optim.scale_by_adam`).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.optimistic_adam_v2(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.8526326 -1.8526325]

    References:
      Daskalakis et al., 2018, https://arxiv.org/abs/1711.00141
    """
    return chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(alpha=alpha, beta=beta),
        scale_by_learning_rate(learning_rate),
    )


@suggest_keywords
def optimistic_adam(
    learning_rate: Any,
    optimism: Any = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-08,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
) -> Chain:
    r"""Optimistic Adam (Daskalakis et al., 2018, "Training GANs with Optimism"), with the
    optimism as a second learning rate. Deprecated, as in optax: use ``optimistic_adam_v2``.

    .. math::
        r_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon),\quad
        \theta_{t+1} = \theta_t - \alpha r_t - o (r_t - r_{t-1})

    (:math:`\alpha` = ``learning_rate``, :math:`o` = ``optimism``, :math:`r_0 = r_1`), with
    Nesterov momentum in :math:`\hat m_t` by default; see ``scale_by_adam``. It is
    ``optimistic_adam_v2(1.0, alpha=learning_rate, beta=optimism)``.

    Args:
      learning_rate: :math:`\alpha`, a number (not a schedule; ``optimistic_adam_v2`` takes
        one).
      optimism: :math:`o`; None means ``learning_rate``, as in the paper.
      b1: the decay of the first moment.
      b2: the decay of the second moment.
      eps: added to the root of the second moment.
      eps_root: added to the second moment inside the root.
      mu_dtype: the storage dtype of the first moment (None: float32 or the parameter's).
      nesterov: Nesterov momentum in the first moment.

    Returns:
      The optimizer: ``scale_by_adam``, ``scale_by_optimistic_gradient`` and a sign flip.

    Raises:
      ValueError: ``learning_rate`` is a schedule (as in optax), or a bad hyperparameter.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import warnings
      >>> import optim
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     opt = optim.optimistic_adam(1e-2, 1.0)
      >>> def step(carry, _):  # gradient descent-ascent on f(x, y) = x y
      ...     params, state = carry
      ...     x, y = params
      ...     updates, state = opt.update((y, -x), state, params)
      ...     return (optim.apply_updates(params, updates), state), jnp.hypot(x, y)
      >>> params = (jnp.array(1.0), jnp.array(2.0))
      >>> _, distances = jax.lax.scan(step, (params, opt.init(params)), length=1025)
      >>> print(f"{distances[0]:.3f} {distances[1024]:.3f}")
      2.236 0.001
    """
    if is_schedule(learning_rate):
        raise ValueError(
            "learning_rate of optimistic_adam must be a number, not a schedule; "
            "optimistic_adam_v2 takes a schedule"
        )
    learning_rate = learning_rate_hyper(learning_rate)
    optimism = learning_rate if optimism is None else hyper(optimism, "optimism", schedule=False)
    tx = chain(
        scale_by_adam(
            b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype, nesterov=nesterov
        ),
        scale_by_optimistic_gradient(alpha=learning_rate, beta=optimism),
        scale_by_learning_rate(1.0),  # flips the sign
    )
    # After the checks, so that bad arguments raise first; attributed to the caller.
    warn_user(
        "`optimistic_adam` is deprecated, please use `optimistic_adam_v2` instead.",
        DeprecationWarning,
    )
    return tx
