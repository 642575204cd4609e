"""Stochastic gradient descent, with (Nesterov) momentum, and with annealed gradient noise."""

from __future__ import annotations

from typing import Any

from optim._hyper import check_flag, hyper
from optim._keywords import suggest_keywords
from optim._types import ScalarOrSchedule
from optim.base import Chain, chain, identity
from optim.transforms._accumulation import trace
from optim.transforms._adding import _resolve_key, add_noise
from optim.transforms._scaling import scale_by_learning_rate


@suggest_keywords
def sgd(
    learning_rate: ScalarOrSchedule,
    momentum: Any = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
) -> Chain:
    r"""Stochastic gradient descent (Robbins & Monro, 1951), optionally with momentum.

    .. math:: m_t = g_t + \mu m_{t-1},\quad \theta_{t+1} = \theta_t - \eta_t m_t

    (``momentum=None``: :math:`m_t = g_t`; ``nesterov``: the step uses
    :math:`g_t + \mu m_t`; Sutskever et al., 2013). Full-batch gradients make it gradient
    descent; one random example per step is classic stochastic gradient descent.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      momentum: the momentum decay :math:`\mu >= 0` (a number, not a schedule), or ``None``
        for plain (stochastic) gradient descent without a momentum buffer.
      nesterov: use Nesterov momentum (Sutskever et al., 2013): the step uses
        :math:`g_t + \mu m_t` in place of :math:`m_t`. Needs a ``momentum``: with
        ``momentum=None`` it raises ``ValueError`` (optax ignores the flag).
      accumulator_dtype: storage dtype of the momentum buffer :math:`m_t` (a floating or
        complex dtype); ``None``: float32, or the parameter's dtype when wider. Unused without
        ``momentum``.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Raises:
      ValueError: when ``nesterov`` is True and ``momentum`` is ``None``, or ``momentum`` is
        negative.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.sgd(learning_rate=0.1, momentum=0.9)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.95 -1.95]

    References:
      Robbins & Monro, 1951, https://doi.org/10.1214/aoms/1177729586;
      Sutskever et al., 2013, https://proceedings.mlr.press/v28/sutskever13.html
    """
    return chain(
        _momentum(momentum, nesterov, accumulator_dtype), scale_by_learning_rate(learning_rate)
    )


def _momentum(momentum: Any, nesterov: Any, accumulator_dtype: Any = None) -> Any:
    """``trace`` with ``momentum`` (>= 0, as in PyTorch), or ``identity`` for ``None``."""
    nesterov = check_flag(nesterov, "nesterov")
    if momentum is None:
        if nesterov:
            raise ValueError(
                "nesterov=True needs a momentum: with momentum=None there is no velocity to "
                "look ahead with (optax ignores the flag); pass momentum=0.9, say"
            )
        return identity()
    momentum = hyper(momentum, "momentum", schedule=False, low=0.0)
    return trace(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)


@suggest_keywords
def noisy_sgd(
    learning_rate: ScalarOrSchedule,
    eta: Any = 0.01,
    gamma: Any = 0.55,
    key: Any = None,
    *,
    seed: int | None = None,
) -> Chain:
    r"""Noisy SGD (Neelakantan et al., 2015, "Adding Gradient Noise Improves Learning for Very
    Deep Networks").

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(g_t + \mathcal N(0, \sigma_t^2)\big),
        \quad \sigma_t^2 = \frac{\eta_{noise}}{t^\gamma}

    see :func:`optim.add_noise`.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      eta: the initial noise variance :math:`\eta_{noise} >= 0`.
      gamma: the annealing exponent :math:`\gamma >= 0`: the variance at step :math:`t` is
        :math:`\eta_{noise} / t^\gamma`.
      key: an int or a JAX PRNG key the noise is drawn from (split each step, as optax does).
        ``None`` warns and uses key 0, as in optax.
      seed: keyword-only, deprecated (as in optax): an int used in place of ``key``; giving
        both raises ``ValueError``.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.noisy_sgd(learning_rate=0.1, eta=0.0, key=0)  # eta=0: no noise, plain SGD
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.95 -1.95]

    References:
      Neelakantan et al., 2015, https://arxiv.org/abs/1511.06807
    """
    key = _resolve_key(key, seed)
    return chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))
