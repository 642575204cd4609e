"""Polyak step sizes: the step that would reach a target loss if the loss were linear.

These transformations need the current loss: call ``update(grads, state, params,
value=loss)`` (``optim.fit`` does).
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import hyper, hyper_field, nonnegative
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass, static
from optim._tree import PyTree, abs_sq, check_params, is_trainable, map_arrays, upcast
from optim.base import Chain, EmptyState, Transformation, chain
from optim.optimizers._sgd import sgd

_VARIANTS = ("sps", "sps+")


# optax's threshold below which the squared gradient norm counts as zero: float64 epsilon.
_TINY = float(np.finfo(np.float64).eps)


@pytree_dataclass
class ScaleByPolyak(Transformation):
    r"""Stochastic Polyak step size (Loizou et al., 2021, "Stochastic Polyak Step-size for
    SGD: An Adaptive Learning Rate for Fast Convergence"; Polyak, 1987).

    .. math:: u_t = \min\left(\frac{f(\theta_t) - f^\star}{\lVert g_t\rVert^2 + \epsilon},
        \gamma_{max}\right) g_t,

    the norm over all leaves together, :math:`u_t = 0` where
    :math:`\lVert g_t\rVert^2 + \epsilon` is below float64's machine epsilon (as in optax).
    ``variant="sps+"`` (Garrigos et al., 2023, "Function value learning: Adaptive learning
    rates based on the Polyak stepsize and function splitting in ERM") uses
    :math:`\max(f(\theta_t) - f^\star, 0)`.

    Attributes:
      f_min: :math:`f^\star`, a lower bound of the loss (0 for most losses; the optimal
        value when known).
      max_learning_rate: :math:`\gamma_{max} >= 0`, the largest step size taken.
      eps: :math:`\epsilon >= 0`, added to the squared gradient norm in the denominator.
      variant: ``"sps"`` (the paper's step) or ``"sps+"`` (Garrigos et al., 2023: the gap
        :math:`f(\theta_t) - f^\star` floored at 0); anything else raises ``ValueError``.

    The fields are the arguments of :func:`optim.scale_by_polyak`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    f_min: Any = hyper_field()
    max_learning_rate: Any = nonnegative()
    eps: Any = nonnegative()
    variant: str = static("sps")

    def init(self, params: PyTree) -> EmptyState:
        check_params(params)
        return EmptyState()

    def update(self, updates, state, params=None, *, value: Any = None, **extra_args):
        del params, extra_args
        if value is None:
            raise TypeError(
                "scale_by_polyak needs the loss: call update(grads, state, params, value=loss) "
                "(optim.fit passes it)"
            )
        if jnp.shape(value) != ():
            raise ValueError(f"value must be the scalar loss, got shape {jnp.shape(value)}")
        squares = [jnp.sum(abs_sq(upcast(g))) for g in jax.tree.leaves(updates) if is_trainable(g)]
        sq_norm = sum(squares) if squares else jnp.zeros([], jnp.float32)
        gap = (jnp.asarray(value) - self.f_min).astype(sq_norm.dtype)
        if self.variant == "sps+":
            gap = jnp.maximum(gap, 0.0)
        denominator = sq_norm + self.eps
        step = jnp.where(
            denominator <= _TINY, 0.0, jnp.minimum(gap / denominator, self.max_learning_rate)
        )
        return cast_like_grads(map_arrays(lambda g: step * upcast(g), updates), updates), state


@suggest_keywords
def scale_by_polyak(
    f_min: Any = 0.0, max_learning_rate: Any = 1.0, eps: Any = 0.0, variant: str = "sps"
) -> ScaleByPolyak:
    r"""Scale updates by the Polyak step size; ``update`` needs ``value=loss``
    (``optax.scale_by_polyak``).

    .. math:: u_t = \min\left(\frac{f(\theta_t) - f^\star}{\lVert g_t\rVert^2 + \epsilon},
        \gamma_{max}\right) g_t,

    the norm over all leaves together; :math:`u_t = 0` where :math:`\lVert g_t\rVert^2 + \epsilon`
    is below float64's machine epsilon (as in optax). The output points along the gradient.

    Args:
      f_min: :math:`f^\star`, a lower bound of the loss (0 for most losses; the optimal
        value when known).
      max_learning_rate: :math:`\gamma_{max} >= 0`, the largest step size taken.
      eps: :math:`\epsilon >= 0`, added to the squared gradient norm in the denominator.
      variant: ``"sps"`` (the paper's step) or ``"sps+"`` (Garrigos et al., 2023: the gap
        :math:`f(\theta_t) - f^\star` floored at 0); anything else raises ``ValueError``.

    Returns:
      An :class:`optim.GradientTransformation` with an empty state; its ``update`` needs the
      scalar loss as ``value=`` (``TypeError`` without it, ``ValueError`` for a non-scalar).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_polyak()
      >>> grads = jnp.array([3.0, 4.0])
      >>> updates, _ = tx.update(grads, tx.init(grads), value=jnp.array(5.0))
      >>> print(updates)
      [0.6 0.8]

    References:
      Loizou et al., 2021, https://arxiv.org/abs/2002.10542;
      Garrigos et al., 2023, https://arxiv.org/abs/2307.14528
    """
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
    return ScaleByPolyak(
        f_min=f_min,
        max_learning_rate=max_learning_rate,
        eps=eps,
        variant=variant,
    )


@suggest_keywords
def polyak_sgd(
    max_learning_rate: Any = 1.0,
    scaling: Any = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
) -> Chain:
    r"""SGD with the stochastic Polyak step size (Loizou et al., 2021); ``update`` needs
    ``value=loss``.

    Built as optax builds it, ``sgd(scaling)`` then ``scale_by_polyak``, so the norm is taken
    of the already scaled gradient :math:`s g_t`:

    .. math:: \theta_{t+1} = \theta_t - \min\left(\frac{f(\theta_t) - f^\star}
        {s^2\lVert g_t\rVert^2 + \epsilon}, \gamma_{max}\right) s\, g_t.

    With the default ``scaling=1`` this is the paper's step; optax's documented
    :math:`s \min(\cdot)` holds only then.

    Args:
      max_learning_rate: :math:`\gamma_{max} >= 0`, the largest step size taken.
      scaling: :math:`s >= 0`, a number or a schedule: the learning rate of the ``sgd`` step
        the Polyak step size then scales (1, the default, gives the paper's step).
      f_min: :math:`f^\star`, a lower bound of the loss (0 for most losses; the optimal
        value when known).
      eps: :math:`\epsilon >= 0`, added to the squared gradient norm in the denominator.
      variant: ``"sps"`` (the paper's step) or ``"sps+"`` (Garrigos et al., 2023: the gap
        :math:`f(\theta_t) - f^\star` floored at 0); anything else raises ``ValueError``.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves). Its ``update`` needs the scalar loss as ``value=``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum(w**2)
      >>> tx = optim.polyak_sgd()
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> value, grads = jax.value_and_grad(loss)(params)
      >>> updates, state = tx.update(grads, state, params, value=value)
      >>> print(optim.apply_updates(params, updates))
      [ 0.5 -1. ]

    References:
      Loizou et al., 2021, https://arxiv.org/abs/2002.10542
    """
    return chain(
        sgd(learning_rate=hyper(scaling, "scaling", low=0.0)),
        scale_by_polyak(max_learning_rate=max_learning_rate, f_min=f_min, eps=eps, variant=variant),
    )
