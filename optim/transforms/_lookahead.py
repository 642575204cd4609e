"""Lookahead (Zhang et al., 2019): fast weights trained by an inner optimizer, pulled every k
steps toward slow weights that follow them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import decay, flag, int_option
from optim._keywords import suggest_keywords
from optim._numerics import decay_complement, decay_rate
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    map_arrays,
    upcast,
    zero_count,
)
from optim._warnings import warn_user
from optim.base import Transformation, as_transformation


class LookaheadState(NamedTuple):
    """The fast optimizer's state and the fast steps taken since the last synchronisation.

    Attributes:
      fast_state: the fast optimizer's state.
      steps_since_sync: the number of fast steps taken since the last synchronisation,
        ``0`` to ``sync_period - 1`` (int32 scalar).
    """

    fast_state: Any
    steps_since_sync: jax.Array


class LookaheadParams(NamedTuple):
    r"""Fast parameters (compute gradients with these) and slow ones (evaluate these).

    The parameters :func:`optim.lookahead` updates (``optax.LookaheadParams``); build them
    with ``LookaheadParams.init_synced(params)``.

    Attributes:
      fast: the fast parameters :math:`\phi`, a pytree: the gradients are computed here.
      slow: the slow parameters :math:`\theta`, a pytree with the structure of ``fast``:
        the ones to evaluate and keep.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> params = optim.LookaheadParams.init_synced({"w": jnp.array([1.0, 2.0])})
      >>> print(params.fast["w"], params.slow["w"])
      [1. 2.] [1. 2.]
    """

    fast: PyTree
    slow: PyTree

    @classmethod
    def init_synced(cls, params: PyTree) -> LookaheadParams:
        """Fast and slow parameters both equal to ``params``.

        Args:
          params: the initial parameters, a pytree.

        Returns:
          A ``LookaheadParams`` whose ``fast`` and ``slow`` are both ``params``.
        """
        return cls(slow=params, fast=params)


@pytree_dataclass
class Lookahead(Transformation):
    r"""Lookahead (Zhang et al., 2019, "Lookahead Optimizer: k steps forward, 1 step back").

    The fast weights :math:`\phi` take ``sync_period`` = :math:`k` steps of the fast
    optimizer; then the slow weights move towards them and the fast ones are reset:

    .. math:: \theta \leftarrow \theta + \alpha(\phi_k - \theta),\qquad \phi \leftarrow \theta,

    :math:`\alpha` = ``slow_step_size``. Written, as optax does, as one update of
    ``LookaheadParams(fast, slow)`` per step, with :math:`d = \phi + u - \theta`:
    :math:`u_\theta = \alpha\,d` and :math:`u_\phi = u - (1-\alpha)\,d` on synchronising steps,
    :math:`u_\theta = 0` and :math:`u_\phi = u` otherwise. Built by :func:`optim.lookahead`.

    Attributes:
      fast_optimizer: the optimizer of the fast weights.
      sync_period: :math:`k`, the number of fast steps between synchronisations (static
        int >= 1).
      slow_step_size: :math:`\alpha`, kept with its complement :math:`1 - \alpha` (a
        ``Decay``).
      reset_state: re-initialise the fast optimizer's state at each synchronisation
        (static).
    """

    fast_optimizer: Any
    sync_period: int = int_option(low=1)
    slow_step_size: Any = decay(closed=True)
    reset_state: bool = flag(False)

    def init(self, params: PyTree) -> LookaheadState:
        fast = getattr(params, "fast", None)
        if fast is None:
            warn_user(
                "lookahead init got params without a `fast` attribute; treating them as the "
                "fast parameters. Pass LookaheadParams.init_synced(params)."
            )
            fast = params
        return LookaheadState(self.fast_optimizer.init(fast), zero_count())

    def update(self, updates, state, params=None, **extra_args):
        if not (hasattr(params, "fast") and hasattr(params, "slow")):
            raise ValueError(
                "lookahead needs params=LookaheadParams(fast=..., slow=...) in update, got "
                f"{type(params).__name__}"
            )
        fast_updates, fast_state = self.fast_optimizer.update(
            updates, state.fast_state, params.fast, **extra_args
        )
        sync = state.steps_since_sync == self.sync_period - 1
        alpha = self.slow_step_size
        diff = map_arrays(
            lambda f, u, s: upcast(f) + upcast(u) - upcast(s),
            params.fast,
            fast_updates,
            params.slow,
        )
        slow_updates = map_arrays(
            lambda d, s: jnp.where(sync, decay_rate(alpha) * d, 0).astype(s.dtype),
            diff,
            params.slow,
        )
        fast_updates = map_arrays(
            lambda u, d: (upcast(u) - jnp.where(sync, decay_complement(alpha) * d, 0)).astype(
                u.dtype
            ),
            fast_updates,
            diff,
        )
        if self.reset_state:
            initial = self.fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(lambda c, i: jnp.where(sync, i, c), fast_state, initial)
        steps = (state.steps_since_sync + 1) % self.sync_period
        return LookaheadParams(fast=fast_updates, slow=slow_updates), LookaheadState(
            fast_state, steps.astype(jnp.int32)
        )


@suggest_keywords
def lookahead(
    fast_optimizer: Any, sync_period: int, slow_step_size: Any, reset_state: bool = False
) -> Lookahead:
    r"""Lookahead around ``fast_optimizer`` (``optax.lookahead``; Zhang et al., 2019,
    "Lookahead Optimizer: k steps forward, 1 step back").

    The fast weights :math:`\phi` take :math:`k` steps of the fast optimizer; then the slow
    weights move towards them and the fast ones are reset:

    .. math:: \theta \leftarrow \theta + \alpha(\phi_k - \theta),\qquad \phi \leftarrow \theta.

    Params are :class:`optim.LookaheadParams` ``(fast, slow)``; compute gradients at
    ``params.fast``, pass the whole ``params`` to ``update`` and apply the returned updates
    (a ``LookaheadParams`` too) unchanged with :func:`optim.apply_updates`.

    Args:
      fast_optimizer: the optimizer of the fast weights (ours or optax's).
      sync_period: :math:`k`, the number of fast steps between synchronisations: an int
        >= 1.
      slow_step_size: :math:`\alpha`, the fraction of the way the slow weights move towards
        the fast ones: a number in ``[0, 1]``.
      reset_state: re-initialise the fast optimizer's state at each synchronisation. True
        or False.

    Returns:
      A ``Lookahead`` transformation (an :class:`optim.GradientTransformation`) whose state
      is an :class:`optim.LookaheadState`.

    Raises:
      ValueError: (in ``update``) ``params`` is not a ``LookaheadParams``.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.lookahead(optim.sgd(0.1), sync_period=2, slow_step_size=0.5)
      >>> params = optim.LookaheadParams.init_synced({"w": jnp.array([1.0, 2.0])})
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, state, params)
      ...     params = optim.apply_updates(params, updates)
      ...     print(params.fast["w"], params.slow["w"])
      [0.9 2.2] [1. 2.]
      [0.9 2.2] [0.9 2.2]

    References:
      Zhang et al., 2019, https://arxiv.org/abs/1907.08610
    """
    return Lookahead(
        fast_optimizer=as_transformation(fast_optimizer, "fast_optimizer"),
        sync_period=sync_period,
        slow_step_size=slow_step_size,
        reset_state=reset_state,
    )
