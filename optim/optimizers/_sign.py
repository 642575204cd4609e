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
    """Lion's step count and momentum.

    Attributes:
      count: the number of updates so far, an int32 scalar.
      mu: the momentum :math:`m_t`, a pytree like the params.
    """

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

    Attributes:
      b1: interpolation rate :math:`\beta_1` between the momentum and the current update, in
        ``[0, 1]``: the step takes the sign of :math:`\beta_1 m_{t-1} + (1-\beta_1) g_t`.
      b2: decay rate :math:`\beta_2` of the momentum :math:`m_t`, in ``[0, 1]``.
      smooth_beta: beyond optax: the slope :math:`\beta_s >= 0` of
        ``mode="smooth"``; unused by the other modes.
      mu_dtype: storage dtype of the momentum ``mu`` (a floating or complex dtype);
        ``None``: float32, or the parameter's dtype when wider.
      mode: beyond optax: ``"hard"`` (the sign, Lion's rule), ``"smooth"``
        (:math:`\tanh(\beta_s c_t)`) or ``"refined"`` (:math:`c_t` where :math:`|c_t| < 1`, its
        sign elsewhere); any other value raises ``ValueError``.

    The fields are the arguments of :func:`optim.scale_by_lion`, which builds it.
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
    r"""Rescale updates to the sign of Lion's interpolated momentum (``optax.scale_by_lion``).

    .. math::
        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad u_t = \operatorname{sign}(c_t),\quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t.

    Args:
      b1: interpolation rate :math:`\beta_1` between the momentum and the current update, in
        ``[0, 1]``: the step takes the sign of :math:`\beta_1 m_{t-1} + (1-\beta_1) g_t`.
      b2: decay rate :math:`\beta_2` of the momentum :math:`m_t`, in ``[0, 1]``.
      mu_dtype: storage dtype of the momentum ``mu`` (a floating or complex dtype);
        ``None``: float32, or the parameter's dtype when wider.
      mode: keyword-only, beyond optax: ``"hard"`` (the sign, Lion's rule), ``"smooth"``
        (:math:`\tanh(\beta_s c_t)`) or ``"refined"`` (:math:`c_t` where :math:`|c_t| < 1`, its
        sign elsewhere); any other value raises ``ValueError``.
      smooth_beta: keyword-only, beyond optax: the slope :math:`\beta_s >= 0` of
        ``mode="smooth"``; unused by the other modes.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByLionState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_lion()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 1. -1.]

    References:
      Chen et al., 2023, https://arxiv.org/abs/2302.06675
    """
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
    r"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms").

    Lion with decoupled weight decay:

    .. math:: \theta_{t+1} = \theta_t - \eta_t\big(\operatorname{sign}(\beta_1 m_{t-1} +
        (1-\beta_1) g_t) + \lambda\theta_t\big),\quad m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t,

    the decay applied where ``mask`` is True; see :func:`optim.scale_by_lion`. Its sign steps are
    larger than Adam's: the paper uses a learning rate 3-10 times smaller and a weight decay
    3-10 times larger.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: interpolation rate :math:`\beta_1` between the momentum and the current update, in
        ``[0, 1]``: the step takes the sign of :math:`\beta_1 m_{t-1} + (1-\beta_1) g_t`.
      b2: decay rate :math:`\beta_2` of the momentum :math:`m_t`, in ``[0, 1]``.
      mu_dtype: storage dtype of the momentum ``mu`` (a floating or complex dtype);
        ``None``: float32, or the parameter's dtype when wider.
      weight_decay: strength :math:`\lambda >= 0` of the decoupled weight decay, a number
        or a schedule: :math:`\lambda \theta_t` is added to the direction before the learning
        rate scales it (:func:`optim.add_decayed_weights`).
      mask: where weight decay applies: a pytree of booleans with the structure of the
        params (or a prefix of it), or a function ``params -> such a pytree``; True leaves are
        decayed, False leaves are not. ``None``: every leaf is decayed.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.lion(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.8999    -1.8998001]

    References:
      Chen et al., 2023, https://arxiv.org/abs/2302.06675
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
    r"""Replace each update element by its sign (``optax.scale_by_sign``).

    :math:`u_t = \operatorname{sign}(g_t)`, and :math:`g/|g|` (0 at 0) for complex leaves.

    Returns:
      An :class:`optim.GradientTransformation` (stateless); ``update`` maps gradients to
      their signs, without the learning rate or its minus sign.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_sign()
      >>> grads = jnp.array([0.5, -0.25, 0.0])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 1. -1.  0.]
    """
    return ScaleBySign()


@suggest_keywords
def sign_sgd(learning_rate: ScalarOrSchedule) -> Chain:
    r"""signSGD (Bernstein et al., 2018, "signSGD: Compressed Optimisation for Non-Convex
    Problems").

    .. math:: \theta_{t+1} = \theta_t - \eta_t \operatorname{sign}(g_t)

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.sign_sgd(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.001])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9 -1.9]

    References:
      Bernstein et al., 2018, https://arxiv.org/abs/1802.04434
    """
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

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      beta: decay rate :math:`\beta` of the momentum, in ``[0, 1]``.
      accumulator_dtype: storage dtype of the momentum (a floating or complex dtype);
        ``None``: float32, or the parameter's dtype when wider.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.signum(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.001])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9 -1.9]

    References:
      Bernstein et al., 2018, https://arxiv.org/abs/1802.04434
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
    r"""Per-element step sizes and the update of the previous step (zero after a sign flip).

    Attributes:
      step_sizes: the per-element step sizes :math:`\\delta_t`, a pytree like the params.
      prev_updates: this step's update :math:`d_t` (0 where the sign flipped), compared with
        the next gradient's sign.
    """

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

    Attributes:
      learning_rate: the initial per-element step size :math:`\delta_0 >= 0` (a number: Rprop
        adapts it, so no schedule).
      eta_minus: factor :math:`\eta^- \in [0, 1]` a step size is multiplied by when the
        gradient's sign flips.
      eta_plus: factor :math:`\eta^+ >= 1` a step size is multiplied by when the gradient keeps
        its sign.
      min_step_size: lower bound (>= 0) of the step sizes.
      max_step_size: upper bound (>= 0) of the step sizes.
      current_update: beyond optax: return this step's update :math:`d_t` (the
        papers' algorithm and ``torch.optim.Rprop``); False, the default, returns optax's
        previous-step update :math:`d_{t-1}` (0 where the sign flipped), so the first step does
        not move.

    The fields are the arguments of :func:`optim.scale_by_rprop`, which builds it.
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
    r"""Per-element step sizes adapted to sign agreement (``optax.scale_by_rprop``).

    Rprop, the iRprop- variant (Riedmiller & Braun, 1993; Igel & Hüsken, 2000): with
    :math:`s_t = g_t\,d_{t-1}`, each step size :math:`\delta_t` is multiplied by
    :math:`\eta^+` where :math:`s_t > 0` and by :math:`\eta^-` where :math:`s_t < 0` (clipped to
    [``min_step_size``, ``max_step_size``]), and :math:`d_t = \delta_t \operatorname{sign}(g_t)`
    (0 where :math:`s_t < 0`). The output is positive along the gradient: :func:`optim.rprop`
    negates it.

    Args:
      learning_rate: the initial per-element step size :math:`\delta_0 >= 0` (a number: Rprop
        adapts it, so no schedule).
      eta_minus: factor :math:`\eta^- \in [0, 1]` a step size is multiplied by when the
        gradient's sign flips.
      eta_plus: factor :math:`\eta^+ >= 1` a step size is multiplied by when the gradient keeps
        its sign.
      min_step_size: lower bound (>= 0) of the step sizes.
      max_step_size: upper bound (>= 0) of the step sizes.
      current_update: keyword-only, beyond optax: return this step's update :math:`d_t` (the
        papers' algorithm and ``torch.optim.Rprop``); False, the default, returns optax's
        previous-step update :math:`d_{t-1}` (0 where the sign flipped), so the first step does
        not move.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the minus sign.
      Its state is a :class:`optim.ScaleByRpropState`.

    Raises:
      TypeError: from ``init`` and ``update`` when the params or gradients are complex (Rprop
        compares signs of real numbers).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_rprop(learning_rate=0.1, current_update=True)
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> for _ in range(2):
      ...     updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.12 -0.12]

    References:
      Riedmiller & Braun, 1993, https://doi.org/10.1109/ICNN.1993.298623;
      Igel & Hüsken, 2000, https://citeseerx.ist.psu.edu/doc/view/pdf/10.1.1.17.1332
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
    r"""Rprop (Riedmiller & Braun, 1993): :math:`\theta_{t+1} = \theta_t - u_t`.

    :math:`u_t` is :func:`optim.scale_by_rprop`'s update.

    The step sizes adapt per element, growing while the gradient keeps its sign and shrinking
    when it flips; only the gradient's sign is used. By default (as in optax 0.2.8) each step
    applies the previous step's update, so the first step does not move.

    Args:
      learning_rate: the initial per-element step size :math:`\delta_0 >= 0` (a number: Rprop
        adapts it, so no schedule).
      eta_minus: factor :math:`\eta^- \in [0, 1]` a step size is multiplied by when the
        gradient's sign flips.
      eta_plus: factor :math:`\eta^+ >= 1` a step size is multiplied by when the gradient keeps
        its sign.
      min_step_size: lower bound (>= 0) of the step sizes.
      max_step_size: upper bound (>= 0) of the step sizes.
      current_update: keyword-only, beyond optax: return this step's update :math:`d_t` (the
        papers' algorithm and ``torch.optim.Rprop``); False, the default, returns optax's
        previous-step update :math:`d_{t-1}` (0 where the sign flipped), so the first step does
        not move.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Raises:
      TypeError: from ``init`` and ``update`` when the params or gradients are complex (Rprop
        compares signs of real numbers).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.rprop(learning_rate=0.1, current_update=True)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9 -1.9]

    References:
      Riedmiller & Braun, 1993, https://doi.org/10.1109/ICNN.1993.298623;
      Igel & Hüsken, 2000, https://citeseerx.ist.psu.edu/doc/view/pdf/10.1.1.17.1332
    """
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
