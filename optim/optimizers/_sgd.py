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
    r"""Noisy SGD (Neelakantan et al., 2015): :math:`\theta_{t+1} = \theta_t - \alpha_t(g_t +
    \mathcal N(0, \eta / t^\gamma))`; see ``add_noise``."""
    key = _resolve_key(key, seed)
    return chain(add_noise(eta, gamma, key), scale_by_learning_rate(learning_rate))
