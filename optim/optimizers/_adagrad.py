r"""AdaGrad (Duchi et al., 2011): steps divided by the root of the summed squared gradients;
and Adadelta (Zeiler, 2012), its decaying-average extension with unit-corrected steps.

Notation in the docstrings: :math:`g_t` is the incoming update (the gradient, or the output of
the previous transformation in a chain), :math:`u_t` the outgoing one, :math:`\theta_t` the
parameters, :math:`t \ge 1` the step count. Arithmetic runs in at least float32 whatever the
parameter dtype; state slots keep the dtype they were created with (float32 for bf16/fp16
parameters unless a ``*_dtype`` argument says otherwise); updates leave in the incoming
gradient's dtype.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import decay, dtype_option, nonnegative, positive
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
    ema_update_sq,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    abs_sq,
    full_like,
    map_arrays,
    reject_complex,
    upcast,
)
from optim._types import ScalarOrSchedule
from optim.base import (
    Chain,
    Transformation,
    chain,
    check_updates,
)
from optim.optimizers._adam import (
    _square_safe,
)
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate


class ScaleByRssState(NamedTuple):
    """Adagrad's running sum of squared updates.

    Attributes:
      sum_of_squares: the running sum :math:`s_t` of squared updates, a pytree like the
        params.
    """

    sum_of_squares: PyTree


@pytree_dataclass
class ScaleByRss(Transformation):
    r"""Adagrad scaling (Duchi et al., 2011, "Adaptive Subgradient Methods").

    .. math::
        s_t = s_{t-1} + |g_t|^2,\quad u_t = g_t / \sqrt{s_t + \epsilon}\ (0 \text{ where }
        s_t = 0),\quad s_0 = \text{initial\_accumulator\_value}.

    Attributes:
      initial_accumulator_value: the starting value :math:`s_0 >= 0` of the sum of squares.
      eps: :math:`\epsilon >= 0`, added to the sum inside the square root. Where the sum is 0
        (``initial_accumulator_value=0`` and only zero gradients so far) the step is 0.

    The fields are the arguments of :func:`optim.scale_by_rss`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    initial_accumulator_value: Any = nonnegative()
    eps: Any = nonnegative()

    def init(self, params: PyTree) -> ScaleByRssState:
        return ScaleByRssState(full_like(params, self.initial_accumulator_value))

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.sum_of_squares)
        # Bounded as in scale_by_adam: one gradient spike cannot make the sum inf (many can).
        grads = map_arrays(lambda g: square_safe(upcast(g)), updates)
        sums = map_arrays(lambda g, s: abs_sq(g) + upcast(s), grads, state.sum_of_squares)
        out = map_arrays(
            lambda g, s: jnp.where(s > 0, jax.lax.rsqrt(s + self.eps), 0.0) * g, grads, sums
        )
        return cast_like_grads(out, updates), ScaleByRssState(
            store_like(sums, state.sum_of_squares)
        )


@suggest_keywords
def scale_by_rss(initial_accumulator_value: Any = 0.1, eps: Any = 1e-7) -> ScaleByRss:
    r"""Rescale by the root of the sum of all squared updates (``optax.scale_by_rss``).

    .. math::
        s_t = s_{t-1} + |g_t|^2,\quad u_t = g_t / \sqrt{s_t + \epsilon}.

    Args:
      initial_accumulator_value: the starting value :math:`s_0 >= 0` of the sum of squares.
      eps: :math:`\epsilon >= 0`, added to the sum inside the square root. Where the sum is 0
        (``initial_accumulator_value=0`` and only zero gradients so far) the step is 0.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByRssState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_rss()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.84515417 -0.84515417]

    References:
      Duchi, Hazan & Singer, 2011, https://jmlr.org/papers/v12/duchi11a.html
    """
    return ScaleByRss(
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )


@suggest_keywords
def adagrad(
    learning_rate: ScalarOrSchedule, initial_accumulator_value: Any = 0.1, eps: Any = 1e-7
) -> Chain:
    r"""Adagrad (Duchi, Hazan & Singer, 2011, "Adaptive Subgradient Methods").

    .. math:: s_t = s_{t-1} + g_t^2,\quad
        \theta_{t+1} = \theta_t - \eta_t g_t / \sqrt{s_t + \epsilon}

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      initial_accumulator_value: the starting value :math:`s_0 >= 0` of the sum of squares.
      eps: :math:`\epsilon >= 0`, added to the sum inside the square root. Where the sum is 0
        (``initial_accumulator_value=0`` and only zero gradients so far) the step is 0.

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adagrad(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9154846 -1.9154845]

    References:
      Duchi, Hazan & Singer, 2011, https://jmlr.org/papers/v12/duchi11a.html
    """
    return chain(
        scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate)
    )


class ScaleByAdaDeltaState(NamedTuple):
    r"""Adadelta's running averages of squared gradients (e_g) and squared steps (e_x).

    Attributes:
      e_g: the running average :math:`E[g^2]_t` of squared gradients, a pytree like the params.
      e_x: the running average :math:`E[\\Delta x^2]_t` of squared steps, a pytree like the
        params.
    """

    e_g: PyTree
    e_x: PyTree


@pytree_dataclass
class ScaleByAdaDelta(Transformation):
    r"""Adadelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method").

    .. math::
        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2,\quad
        u_t = \frac{\sqrt{E[\Delta x^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t,\quad
        E[\Delta x^2]_t = \rho E[\Delta x^2]_{t-1} + (1-\rho) u_t^2.

    The ratio of RMS step to RMS gradient gives the step the units of the parameters. Real
    parameters only (as in optax, whose tests skip complex Adadelta); complex ones raise
    ``TypeError`` rather than being optimized wrongly.

    Attributes:
      rho: decay rate :math:`\rho` of both running averages, in ``[0, 1]``.
      eps: :math:`\epsilon > 0`, added under both square roots; it must be positive: it is
        the step's only source while :math:`E[\Delta x^2] = 0`.
      nu_dtype: beyond optax: storage dtype of both running averages
        ``e_g`` and ``e_x`` (``None``: float32, or the parameter's dtype when wider).

    The fields are the arguments of :func:`optim.scale_by_adadelta`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    rho: Any = decay(closed=True)
    eps: Any = positive()
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAdaDeltaState:
        reject_complex(params, "scale_by_adadelta")
        return ScaleByAdaDeltaState(
            e_g=full_like(params, 0.0, self.nu_dtype), e_x=full_like(params, 0.0, self.nu_dtype)
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.e_g)
        reject_complex(updates, "scale_by_adadelta", what="grads")
        rho, eps = self.rho, self.eps
        grads = _square_safe(updates)
        e_g = map_arrays(lambda g, s: ema_update_sq(g, s, rho), grads, state.e_g)
        out = map_arrays(
            lambda g, s, x: jnp.sqrt(upcast(x) + eps) / jnp.sqrt(s + eps) * g,
            grads,
            e_g,
            state.e_x,
        )
        e_x = map_arrays(lambda u, x: ema_update_sq(u, x, rho), out, state.e_x)
        new_state = ScaleByAdaDeltaState(store_like(e_g, state.e_g), store_like(e_x, state.e_x))
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6, *, nu_dtype: Any = None) -> ScaleByAdaDelta:
    r"""Rescale updates by Adadelta's ratio of RMS step to RMS gradient
    (``optax.scale_by_adadelta``).

    .. math::
        E[g^2]_t = \rho E[g^2]_{t-1} + (1-\rho) g_t^2,\quad
        u_t = \frac{\sqrt{E[\Delta x^2]_{t-1} + \epsilon}}{\sqrt{E[g^2]_t + \epsilon}}\, g_t,\quad
        E[\Delta x^2]_t = \rho E[\Delta x^2]_{t-1} + (1-\rho) u_t^2.

    Args:
      rho: decay rate :math:`\rho` of both running averages, in ``[0, 1]``.
      eps: :math:`\epsilon > 0`, added under both square roots; it must be positive: it is
        the step's only source while :math:`E[\Delta x^2] = 0`.
      nu_dtype: keyword-only, beyond optax: storage dtype of both running averages
        ``e_g`` and ``e_x`` (``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByAdaDeltaState`.

    Raises:
      TypeError: from ``init`` and ``update`` when the params or gradients are complex.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_adadelta()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.00316221 -0.00316221]

    References:
      Zeiler, 2012, https://arxiv.org/abs/1212.5701
    """
    return ScaleByAdaDelta(
        rho=rho,
        eps=eps,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
def adadelta(
    learning_rate: Any = None,
    rho: Any = 0.9,
    eps: Any = 1e-6,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
    *,
    nu_dtype: Any = None,
) -> Chain:
    r"""Adadelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method").

    With weight decay added to the gradient first: :math:`\theta_{t+1} = \theta_t - \eta_t u_t`,
    :math:`u_t` from :func:`optim.scale_by_adadelta` applied to :math:`g_t + \lambda\theta_t`.

    Args:
      learning_rate: the step size :math:`\eta_t`, a number >= 0 or a schedule
        ``count -> number``. ``None`` means :math:`\eta = 1`, the paper's Adadelta (optax's
        ``None`` skips the scaling and with it the minus sign, so it climbs the loss; ours
        descends, as ``optax.adadelta(1.0)`` does).
      rho: decay rate :math:`\rho` of both running averages, in ``[0, 1]``.
      eps: :math:`\epsilon > 0`, added under both square roots; it must be positive: it is
        the step's only source while :math:`E[\Delta x^2] = 0`.
      weight_decay: :math:`\lambda >= 0` (a number or a schedule): :math:`\lambda\theta_t` is
        added to the gradient before the Adadelta scaling (coupled, L2-style decay).
      weight_decay_mask: where weight decay applies: a pytree of booleans with the structure
        of the params (or a prefix of it), or a function ``params -> such a pytree``; ``None``:
        every leaf.
      nu_dtype: keyword-only, beyond optax: storage dtype of both running averages
        ``e_g`` and ``e_x`` (``None``: float32, or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Raises:
      TypeError: from ``init`` and ``update`` when the params or gradients are complex.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adadelta()
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9968378 -1.9968377]

    References:
      Zeiler, 2012, https://arxiv.org/abs/1212.5701
    """
    return chain(
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_adadelta(rho, eps, nu_dtype=nu_dtype),
        scale_by_learning_rate(1.0 if learning_rate is None else learning_rate),
    )
