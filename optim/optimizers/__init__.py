r"""Optimizers, grouped by family: each family's maths (its ``scale_by_*`` building blocks) and
its compositions (``chain`` of building blocks, with optax's names, arguments and defaults).

- ``_sgd``: SGD with (Nesterov) momentum, noisy SGD
- ``_adam``: Adam, AdamW, NAdam(W), AMSGrad, Adamax (``scale_by_adam`` is Adam's maths)
- ``_adam_variants``: AdaBelief, RAdam, Yogi, Adan, NovoGrad
- ``_adagrad``: AdaGrad, Adadelta; ``_rmsprop``: RMSProp
- ``_sign``: Lion, signSGD, Signum, Rprop; ``_trust_ratio``: LARS, LAMB, Fromage
- ``_factorized``: Adafactor, SM3; ``_optimistic``: optimistic gradient descent and Adam
- ``_shampoo``: Shampoo (blocked Kronecker-factored preconditioners with grafting)
- ``_kron``: PSGD Kron (Kronecker-factored preconditioners)
- ``_lbfgs``: L-BFGS, with its line searches in ``_linesearch``; ``_polyak``: Polyak step sizes
- ``_soap``: SOAP (Adam in the eigenbasis of Shampoo's preconditioner)

Every name here is also at the top level (``optim.adamw``), as in optax.
"""

from optim.optimizers._adagrad import (
    ScaleByAdaDeltaState,
    ScaleByRssState,
    adadelta,
    adagrad,
    scale_by_adadelta,
    scale_by_rss,
)
from optim.optimizers._adam import (
    ScaleByAdamState,
    ScaleByAmsgradState,
    adam,
    adamax,
    adamaxw,
    adamw,
    amsgrad,
    nadam,
    nadamw,
    scale_by_adam,
    scale_by_adamax,
    scale_by_amsgrad,
)
from optim.optimizers._adam_variants import (
    ScaleByAdanState,
    ScaleByBeliefState,
    ScaleByNovogradState,
    adabelief,
    adan,
    novograd,
    radam,
    scale_by_adan,
    scale_by_belief,
    scale_by_novograd,
    scale_by_radam,
    scale_by_yogi,
    yogi,
)
from optim.optimizers._factorized import (
    FactoredState,
    ScaleBySM3State,
    adafactor,
    scale_by_factored_rms,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
    scale_by_sm3,
    sm3,
)
from optim.optimizers._kron import (
    PreconditionerUpdateSchedule,
    ScaleByKronState,
    kron,
    precond_update_prob_schedule,
    scale_by_kron,
)
from optim.optimizers._lbfgs import (
    ScaleByLBFGSState,
    lbfgs,
    scale_by_lbfgs,
)
from optim.optimizers._linesearch import (
    ScaleByBacktrackingLinesearchState,
    ScaleByZoomLinesearchState,
    ZoomLinesearchInfo,
    scale_by_backtracking_linesearch,
    scale_by_zoom_linesearch,
    value_and_grad_from_state,
)
from optim.optimizers._optimistic import (
    ScaleByOptimisticGradientState,
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
    scale_by_optimistic_gradient,
)
from optim.optimizers._polyak import (
    polyak_sgd,
    scale_by_polyak,
)
from optim.optimizers._rmsprop import (
    ScaleByRmsState,
    ScaleByRStdDevState,
    ScaleByStddevState,
    rmsprop,
    scale_by_rms,
    scale_by_stddev,
)
from optim.optimizers._sgd import (
    noisy_sgd,
    sgd,
)
from optim.optimizers._shampoo import (
    ScaleByShampooState,
    scale_by_shampoo,
    shampoo,
)
from optim.optimizers._sign import (
    ScaleByLionState,
    ScaleByRpropState,
    lion,
    rprop,
    scale_by_lion,
    scale_by_rprop,
    scale_by_sign,
    sign_sgd,
    signum,
)
from optim.optimizers._soap import ScaleBySoapState, scale_by_soap, soap
from optim.optimizers._trust_ratio import (
    ScaleByTrustRatioState,
    fromage,
    lamb,
    lars,
    scale_by_trust_ratio,
)

__all__ = [
    "FactoredState",
    "PreconditionerUpdateSchedule",
    "ScaleByAdaDeltaState",
    "ScaleByAdamState",
    "ScaleByAdanState",
    "ScaleByAmsgradState",
    "ScaleByBacktrackingLinesearchState",
    "ScaleByBeliefState",
    "ScaleByKronState",
    "ScaleByLBFGSState",
    "ScaleByLionState",
    "ScaleByNovogradState",
    "ScaleByOptimisticGradientState",
    "ScaleByRStdDevState",
    "ScaleByRmsState",
    "ScaleByRpropState",
    "ScaleByRssState",
    "ScaleBySM3State",
    "ScaleByShampooState",
    "ScaleBySoapState",
    "ScaleByStddevState",
    "ScaleByTrustRatioState",
    "ScaleByZoomLinesearchState",
    "ZoomLinesearchInfo",
    "adabelief",
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamaxw",
    "adamw",
    "adan",
    "amsgrad",
    "fromage",
    "kron",
    "lamb",
    "lars",
    "lbfgs",
    "lion",
    "nadam",
    "nadamw",
    "noisy_sgd",
    "novograd",
    "optimistic_adam",
    "optimistic_adam_v2",
    "optimistic_gradient_descent",
    "polyak_sgd",
    "precond_update_prob_schedule",
    "radam",
    "rmsprop",
    "rprop",
    "scale_by_adadelta",
    "scale_by_adam",
    "scale_by_adamax",
    "scale_by_adan",
    "scale_by_amsgrad",
    "scale_by_backtracking_linesearch",
    "scale_by_belief",
    "scale_by_factored_rms",
    "scale_by_kron",
    "scale_by_lbfgs",
    "scale_by_lion",
    "scale_by_novograd",
    "scale_by_optimistic_gradient",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_polyak",
    "scale_by_radam",
    "scale_by_rms",
    "scale_by_rprop",
    "scale_by_rss",
    "scale_by_shampoo",
    "scale_by_sign",
    "scale_by_sm3",
    "scale_by_soap",
    "scale_by_stddev",
    "scale_by_trust_ratio",
    "scale_by_yogi",
    "scale_by_zoom_linesearch",
    "sgd",
    "shampoo",
    "sign_sgd",
    "signum",
    "sm3",
    "soap",
    "value_and_grad_from_state",
    "yogi",
]
