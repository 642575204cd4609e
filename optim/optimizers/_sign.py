"""Sign-based methods: Lion, signSGD, Signum and Rprop.

Each step of these uses the sign of a (momentum-averaged) gradient, not its size. For complex
leaves the sign is :math:`z / |z|` (0 at 0), as ``jnp.sign`` and optax compute it; Rprop needs
an ordering and rejects complex parameters, as optax does.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import (
    decay,
    decay_hyper,
    dtype_option,
    flag,
    hyper_field,
    nonnegative,
)
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, ema_update, store_like
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    full_like,
    map_arrays,
    reject_complex,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import SIGNED, Chain, EmptyState, Transformation, chain, check_updates
from optim.transforms._accumulation import ema
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale, scale_by_learning_rate

_LION_MODES = ("hard", "smooth", "refined")


class ScaleByLionState(NamedTuple):
    """Lion's step count and momentum."""

    count: jax.Array
    mu: PyTree

    moment_slots = MappingProxyType({"mu": SIGNED})


@pytree_dataclass
class ScaleByLion(Transformation):
    r"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms").

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad u_t = \operatorname{sign}(c_t),\quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t.

    ``mode="smooth"`` uses :math:`\tanh(\beta_s c_t)` instead of the sign, ``mode="refined"``
    keeps :math:`c_t` where :math:`|c_t| < 1` and its sign elsewhere.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    b1: Any = decay(closed=True)
    b2: Any = decay(closed=True)
    smooth_beta: Any = nonnegative()
    mu_dtype: Any = dtype_option()
    mode: str = static("hard")

    def init(self, params: PyTree) -> ScaleByLionState:
        return ScaleByLionState(count=zero_count(), mu=full_like(params, 0.0, self.mu_dtype))

    def _direction(self, c: jax.Array) -> jax.Array:
        if self.mode == "smooth":
            return jnp.tanh(self.smooth_beta * c)
        if self.mode == "refined":
            return jnp.where(jnp.abs(c) < 1.0, c, jnp.sign(c))
        return jnp.sign(c)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        out = map_arrays(lambda g, m: self._direction(ema_update(g, m, self.b1)), updates, state.mu)
        mu = map_arrays(lambda g, m: ema_update(g, m, self.b2), updates, state.mu)
        new_state = ScaleByLionState(count=safe_increment(state.count), mu=store_like(mu, state.mu))
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_lion(
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    *,
    mode: Literal["hard", "smooth", "refined"] = "hard",
    smooth_beta: float = 1.0,
) -> ScaleByLion:
    """Rescale updates to the sign of Lion's interpolated momentum (``optax.scale_by_lion``)."""
    if mode not in _LION_MODES:
        raise ValueError(f"mode must be one of {_LION_MODES}, got {mode!r}")
    return ScaleByLion(
        b1=b1,
        b2=b2,
        smooth_beta=smooth_beta,
        mu_dtype=mu_dtype,
        mode=mode,
    )


@suggest_keywords
def lion(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-3,
    mask: Any = None,
) -> Chain:
    r"""Lion (Chen et al., 2023) with decoupled weight decay.

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(\operatorname{sign}(\beta_1 m_{t-1} +
        (1-\beta_1) g_t) + \lambda\theta_t\big),\quad m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t,

    the decay applied where ``mask`` is True; see ``scale_by_lion``.
    """
    return chain(
        scale_by_lion(b1, b2, mu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


@pytree_dataclass
class ScaleBySign(Transformation):
    r"""Sign of the updates: :math:`u_t = \operatorname{sign}(g_t)` (:math:`g/|g|` if complex)."""

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    def init(self, params: PyTree) -> EmptyState:
        del params
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        return map_arrays(lambda g: jnp.sign(upcast(g)).astype(g.dtype), updates), state


@suggest_keywords
def scale_by_sign() -> ScaleBySign:
    """Replace each update element by its sign (``optax.scale_by_sign``)."""
    return ScaleBySign()


@suggest_keywords
def sign_sgd(learning_rate: ScalarOrSchedule) -> Chain:
    r"""signSGD (Bernstein et al., 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems"): :math:`\theta_{t+1} = \theta_t - \eta_t \operatorname{sign}(g_t)`."""
    return chain(scale_by_sign(), scale_by_learning_rate(learning_rate))


@suggest_keywords
def signum(
    learning_rate: ScalarOrSchedule, beta: Any = 0.9, accumulator_dtype: Any = None
) -> Chain:
    r"""Signum, sign of the momentum (Bernstein et al., 2018, "signSGD: Compressed
    Optimisation for Non-Convex Problems").

    .. math:: m_t = \beta m_{t-1} + (1-\beta) g_t,\quad
        \theta_{t+1} = \theta_t - \eta_t \operatorname{sign}(m_t)

    (no bias correction: it would not change the sign).
    """
    return chain(
        ema(
            decay_hyper(beta, "beta", closed=True),
            debias=False,
            accumulator_dtype=accumulator_dtype,
        ),
        scale_by_sign(),
        scale_by_learning_rate(learning_rate),
    )


class ScaleByRpropState(NamedTuple):
    """Per-element step sizes and the update of the previous step (zero after a sign flip)."""

    step_sizes: PyTree
    prev_updates: PyTree


_RPROP_WHY = "it compares signs of real numbers"


@pytree_dataclass
class ScaleByRprop(Transformation):
    r"""Rprop, the iRprop- variant (Riedmiller & Braun, 1993, "A Direct Adaptive Method for
    Faster Backpropagation Learning: The RPROP Algorithm"; Igel & Hüsken, 2000, "Improving
    the Rprop Learning Algorithm").

    With :math:`s_t = g_t\,d_{t-1}` (:math:`d_0 = 0`) and :math:`\delta_0` = ``learning_rate``:

    .. math::
        \delta_t = \begin{cases} \operatorname{clip}(\eta^+ \delta_{t-1}) & s_t > 0 \\
            \operatorname{clip}(\eta^- \delta_{t-1}) & s_t < 0 \\
            \delta_{t-1} & s_t = 0 \end{cases},\quad
        d_t = \begin{cases} 0 & s_t < 0 \\ \delta_t \operatorname{sign}(g_t) & \text{else}
            \end{cases}

    (clip to [``min_step_size``, ``max_step_size``]). With ``current_update=True``
    :math:`u_t = d_t`, the algorithm of the papers and of ``torch.optim.Rprop``. By default,
    to match optax 0.2.8, :math:`u_t = d_{t-1}` where :math:`s_t \ge 0` and 0 elsewhere: the
    previous step's update, so the first step does not move (optax PR #1725).
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    learning_rate: Any = nonnegative()
    eta_minus: Any = hyper_field(low=0.0, high=1.0)
    eta_plus: Any = hyper_field(low=1.0)
    min_step_size: Any = nonnegative()
    max_step_size: Any = nonnegative()
    current_update: bool = flag(False)

    def init(self, params: PyTree) -> ScaleByRpropState:
        reject_complex(params, "rprop", _RPROP_WHY)
        return ScaleByRpropState(
            step_sizes=full_like(params, self.learning_rate), prev_updates=full_like(params)
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        reject_complex(updates, "rprop", _RPROP_WHY, what="grads")
        check_updates(updates, state.step_sizes)
        signs = map_arrays(lambda g, d: upcast(g) * upcast(d), updates, state.prev_updates)
        step_sizes = map_arrays(
            lambda s, delta: jnp.where(
                s == 0,
                delta,
                jnp.clip(
                    delta * jnp.where(s > 0, self.eta_plus, self.eta_minus),
                    min=self.min_step_size,
                    max=self.max_step_size,
                ),
            ),
            signs,
            state.step_sizes,
        )
        current = map_arrays(
            lambda s, g, delta: jnp.where(s < 0, 0.0, delta * jnp.sign(upcast(g))),
            signs,
            updates,
            step_sizes,
        )
        if self.current_update:
            out = current
        else:
            out = map_arrays(
                lambda s, d: jnp.where(s < 0, 0.0, upcast(d)), signs, state.prev_updates
            )
        new_state = ScaleByRpropState(
            step_sizes=store_like(step_sizes, state.step_sizes),
            prev_updates=store_like(current, state.prev_updates),
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
    *,
    current_update: bool = False,
) -> ScaleByRprop:
    """Per-element step sizes adapted to sign agreement (``optax.scale_by_rprop``).

    ``learning_rate`` is the initial step size. ``current_update`` (not in optax) returns
    this step's update instead of optax's previous one; see ``ScaleByRprop``.
    """
    return ScaleByRprop(
        learning_rate=learning_rate,
        eta_minus=eta_minus,
        eta_plus=eta_plus,
        min_step_size=min_step_size,
        max_step_size=max_step_size,
        current_update=current_update,
    )


@suggest_keywords
def rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
    *,
    current_update: bool = False,
) -> Chain:
    r"""Rprop: :math:`\theta_{t+1} = \theta_t - u_t` with ``scale_by_rprop``'s :math:`u_t`."""
    return chain(
        scale_by_rprop(
            learning_rate,
            eta_minus,
            eta_plus,
            min_step_size,
            max_step_size,
            current_update=current_update,
        ),
        scale(-1.0),
    )
