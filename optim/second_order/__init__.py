"""Second-order quantities of a loss ``loss(params, inputs, targets)`` (``optax.second_order``):
Hessian-vector products, the Hessian's diagonal and the observed Fisher diagonal.

optax 0.2.7 deprecates these three functions (to be removed in 0.2.9); they are kept here with
the same signatures and numbers so that programs using them run unchanged.
"""

from optim.second_order._curvature import fisher_diag, hessian_diag, hvp

__all__ = ["fisher_diag", "hessian_diag", "hvp"]
