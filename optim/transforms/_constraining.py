"""Constraints on updates and parameters: zero NaNs, keep parameters non-negative.

Arithmetic runs in at least float32; updates leave in the incoming gradient's dtype; leaves
that are not floating arrays get ``None``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_float_updates,
    check_params,
    map_arrays,
    reject_complex,
    upcast,
)
from optim.base import EmptyState, Transformation, check_updates, require_params


class ZeroNansState(NamedTuple):
    """Per leaf, a boolean scalar: whether the last update held a NaN there (optax's field).

    Attributes:
      found_nan: a pytree with the structure of the params holding a boolean scalar per
        floating leaf (``None`` at other leaves).
    """

    found_nan: PyTree


@pytree_dataclass
class ZeroNans(Transformation):
    r"""Replace NaNs by zeros: :math:`u_{t,i} = 0` where :math:`g_{t,i}` is NaN, else
    :math:`g_{t,i}`.

    The state records, per leaf, whether a NaN was replaced at the last step; the
    transformation does not read it. Complex entries with a NaN part are zeroed whole, as
    in optax. Infinities pass through.
    """

    def init(self, params: PyTree) -> ZeroNansState:
        check_params(params)
        return ZeroNansState(found_nan=map_arrays(lambda p: jnp.array(False), params))

    def update(self, updates, state, params=None, **extra_args):
        del state, params, extra_args
        check_float_updates(updates)
        found_nan = map_arrays(lambda g: jnp.any(jnp.isnan(g)), updates)
        cleaned = map_arrays(lambda g: jnp.where(jnp.isnan(g), jnp.zeros_like(g), g), updates)
        return cleaned, ZeroNansState(found_nan=found_nan)


@suggest_keywords
def zero_nans() -> ZeroNans:
    r"""Replace NaNs in the updates by 0 and record where it happened (``optax.zero_nans``).

    :math:`u_{t,i} = 0` where :math:`g_{t,i}` is NaN, else :math:`g_{t,i}`. Complex entries
    with a NaN part are zeroed whole, as in optax; infinities pass through. The state
    records, per leaf, whether a NaN was replaced at the last step.

    Returns:
      A ``ZeroNans`` transformation (an :class:`optim.GradientTransformation`) whose state is
      a :class:`optim.ZeroNansState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.zero_nans()
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> updates, state = tx.update({"w": jnp.array([jnp.nan, 2.0])}, state)
      >>> print(updates["w"], state.found_nan["w"])
      [0. 2.] True
    """
    return ZeroNans()


NonNegativeParamsState = EmptyState


_NONNEGATIVE_WHY = "complex numbers are not ordered, so 'non-negative' has no meaning for them"
_NONNEGATIVE_ADVICE = "Apply it to real parameters only (e.g. with optim.masked)."


@pytree_dataclass
class KeepParamsNonnegative(Transformation):
    r"""Keep the parameters non-negative after the update:

    .. math:: u_t = \begin{cases} -\theta_t & \theta_t + g_t < 0 \\ g_t & \text{otherwise,}
        \end{cases}

    so that :math:`\theta_{t+1} = \max(\theta_t + g_t, 0)` for :math:`\theta_t \ge 0` (a
    negative parameter is moved to 0). Put it last in a chain: it sees the final update.
    Real parameters only (complex ones raise ``ValueError``, where optax would compare real
    parts).
    """

    def init(self, params: PyTree) -> NonNegativeParamsState:
        check_params(params)
        return NonNegativeParamsState()

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "keep_params_nonnegative")
        check_updates(updates, params, "params")
        reject_complex(
            params, "keep_params_nonnegative", _NONNEGATIVE_WHY, advice=_NONNEGATIVE_ADVICE
        )
        reject_complex(
            updates,
            "keep_params_nonnegative",
            _NONNEGATIVE_WHY,
            what="grads",
            advice=_NONNEGATIVE_ADVICE,
        )

        def clamp(g: jax.Array, p: jax.Array) -> jax.Array:
            g32, p32 = upcast(g), upcast(p)
            return jnp.where(p32 + g32 < 0.0, -p32, g32)

        return cast_like_grads(map_arrays(clamp, updates, params), updates), state


@suggest_keywords
def keep_params_nonnegative() -> KeepParamsNonnegative:
    r"""Modify updates so that parameters stay >= 0 (``optax.keep_params_nonnegative``).

    .. math:: u_t = \begin{cases} -\theta_t & \theta_t + g_t < 0 \\ g_t & \text{otherwise,}
        \end{cases}

    so that :math:`\theta_{t+1} = \max(\theta_t + g_t, 0)` for :math:`\theta_t \ge 0`. Put
    it last in a chain (it sees the final update); needs ``params`` in ``update``. Real
    parameters only: complex ones raise ``ValueError``, where optax would compare real parts.

    Returns:
      A ``KeepParamsNonnegative`` transformation (an :class:`optim.GradientTransformation`)
      with an empty state.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.chain(optim.sgd(learning_rate=1.0), optim.keep_params_nonnegative())
      >>> params = {"w": jnp.array([1.0, 2.0])}
      >>> updates, _ = tx.update({"w": jnp.array([3.0, 1.0])}, tx.init(params), params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [0. 1.]
    """
    return KeepParamsNonnegative()
