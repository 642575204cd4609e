"""Optimizers as compositions of building blocks, with optax's names, arguments and defaults.

Each alias is a ``chain``: the maths lives once, in the building block it names.
"""

from __future__ import annotations

import functools
from typing import Any

from optim._hyper import check_flag, hyper
from optim._types import ScalarOrSchedule
from optim.base import Chain, chain, identity
from optim.transforms._building_blocks import (
    add_decayed_weights,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
    trace,
)


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
    descent; one random example per step is the seed document's SGD.
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


def adam(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> Chain:
    r"""Adam (Kingma & Ba, 2015): :math:`\theta_{t+1} = \theta_t - \eta_t \hat m_t /
    (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)`; see ``scale_by_adam``."""
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> Chain:
    r"""AdamW (Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization").

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(\hat m_t / (\sqrt{\hat v_t +
        \epsilon_{root}} + \epsilon) + \lambda \theta_t\big)

    with the decay applied only where ``mask`` is True.
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


nadam = functools.partial(adam, nesterov=True)
nadam.__doc__ = """NAdam (Dozat, 2016): ``adam`` with Nesterov momentum (``nesterov=True``)."""
nadamw = functools.partial(adamw, nesterov=True)
nadamw.__doc__ = """NAdamW: ``adamw`` with Nesterov momentum (``nesterov=True``)."""


def rmsprop(
    learning_rate: ScalarOrSchedule,
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Any = None,
    nesterov: bool = False,
    bias_correction: bool = False,
) -> Chain:
    r"""RMSProp (Hinton, 2012), centered (Graves, 2013) by option, with optional momentum.

    .. math:: v_t = \beta v_{t-1} + (1-\beta) g_t^2,\quad
        \theta_{t+1} = \theta_t - \eta_t\, g_t / \sqrt{v_t + \epsilon}

    (centered: :math:`v_t - m_t^2` under the root; momentum is applied after the scaling, as in
    optax and PyTorch).
    """
    scaling = scale_by_stddev if check_flag(centered, "centered") else scale_by_rms
    return chain(
        scaling(decay, eps, initial_scale, eps_in_sqrt, bias_correction),
        scale_by_learning_rate(learning_rate),
        _momentum(momentum, nesterov),
    )


def adagrad(
    learning_rate: ScalarOrSchedule, initial_accumulator_value: Any = 0.1, eps: Any = 1e-7
) -> Chain:
    r"""Adagrad (Duchi et al., 2011): :math:`s_t = s_{t-1} + g_t^2`,
    :math:`\theta_{t+1} = \theta_t - \eta_t g_t / \sqrt{s_t + \epsilon}`."""
    return chain(
        scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
    )
