r"""Adam (Kingma and Ba, 2015) and the variants that keep its two moments: AdamW (decoupled
weight decay), NAdam(W) (Nesterov momentum), AMSGrad (a running maximum of the second moment)
and Adamax (the infinity norm).

The maths is the building block (``scale_by_adam``, ``scale_by_amsgrad``, ``scale_by_adamax``);
the optimizers are compositions (``adam``, ``adamw``, ...), with optax's names, arguments and
defaults. Notation: :math:`g_t` the incoming update, :math:`u_t` the outgoing one,
:math:`t \ge 1` the step count, :math:`\hat x_t = x_t / (1 - \beta^t)` the bias-corrected
moment.

Beyond optax, every block and alias takes a keyword-only ``nu_dtype`` for its second-moment
slots. A slot given a dtype is stored in exactly that dtype while the arithmetic runs in
float32 or wider. Without one, slots take the compute dtype (float32 for bf16/fp16
parameters, where optax would use the parameter dtype).

Numerical edges, unlike optax (see ``ScaleByAdam``): every block that keeps a second moment
bounds the incoming gradients at :math:`2^{62}` in magnitude (float32;
``optim._numerics.square_safe``) before either moment sees them, so no second moment overflows
to inf; a step whose denominator is 0 (``eps = eps_root = 0`` and a zero second moment) is 0;
and square roots of second moments have derivative 0 at 0, so ``jax.grad`` through updates
with zero gradients stays finite. Adamax keeps no squares and needs no bound.
"""

from __future__ import annotations

import functools
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import decay, dtype_option, flag, nonnegative
from optim._keywords import suggest_keywords
from optim._numerics import (
    adaptive_steps,
    cast_like_grads,
    debias_tree,
    debiased_first_moment,
    decay_rate,
    ema_update,
    ema_update_sq,
    known_positive,
    nesterov_moment,
    nonfinite_kept,
    one_minus_power,
    over_root,
    safe_sqrt,
    square_bounded,
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    any_traced,
    full_like,
    is_trainable,
    keystr,
    leaves_with_paths,
    map_arrays,
    map_arrays_unzipped,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import (
    SIGNED,
    UNSIGNED,
    Chain,
    Transformation,
    chain,
    check_updates,
)
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate


class ScaleByAdamState(NamedTuple):
    """Adam's step count and first and second moments.

    Attributes:
      count: the number of updates so far, an int32 scalar (saturating at its maximum).
      mu: the first moment :math:`m_t`, a pytree like the params (``None`` at frozen leaves).
      nu: the second moment :math:`v_t`, a pytree like the params.
    """

    count: jax.Array
    mu: PyTree
    nu: PyTree

    moment_slots = MappingProxyType({"mu": SIGNED, "nu": UNSIGNED})

    @classmethod
    def zeros(
        cls, params: PyTree, mu_dtype: Any = None, nu_dtype: Any = None, value: float = 0.0
    ) -> ScaleByAdamState:
        """Step 0, both moments filled with ``value`` (dtype None: float32 or wider)."""
        return cls(
            count=zero_count(),
            mu=full_like(params, value, mu_dtype),
            nu=full_like(params, value, nu_dtype),
        )


@pytree_dataclass
class ScaleByAdam(Transformation):
    r"""Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2,\\
        \hat m_t = m_t / (1-\beta_1^t),\quad \hat v_t = v_t / (1-\beta_2^t),\quad
        u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon).

    With ``nesterov=True`` (Nadam; Dozat, 2016, "Incorporating Nesterov Momentum into
    Adam"): :math:`\hat m_t = \beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`.
    Unlike a common textbook formula, :math:`\epsilon` sits outside the square root and the
    moments are bias-corrected, as in the paper.

    Numerical edges (where optax gives inf or NaN): gradients beyond :math:`2^{62}` in
    magnitude count as :math:`\pm 2^{62}` in both moments (``square_safe``), so :math:`v_t`
    never overflows to inf and a spike does not freeze its coordinate for good; where the
    denominator is 0 (:math:`\epsilon = \epsilon_{root} = 0`, :math:`v_t = 0`) the step is 0;
    and the derivative of :math:`\sqrt{v}` at 0 is taken as 0, so ``jax.grad`` through updates
    with zero gradients stays finite (``safe_sqrt``).

    Attributes:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
        such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
        (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
        wider whatever it is.
      nesterov: use Nesterov momentum (NAdam, Dozat, 2016): the step
        uses :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`
        in place of :math:`\hat m_t`.
      nu_dtype: beyond optax: storage dtype of the second-moment slots,
        as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
        where optax would use the parameter dtype for bf16/fp16 parameters).

    The fields are the arguments of :func:`optim.scale_by_adam`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    b1: Any = decay()
    b2: Any = decay()
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    mu_dtype: Any = dtype_option()
    nesterov: bool = flag(False)
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAdamState:
        return ScaleByAdamState.zeros(params, self.mu_dtype, self.nu_dtype)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        count = safe_increment(state.count)
        if any_traced(updates):  # one compiled call a leaf: traced once per shape and dtype
            rate1, rate2 = decay_rate(self.b1), decay_rate(self.b2)
            # The bias corrections 1 - beta^t, computed once for every leaf.
            corrections = (one_minus_power(rate1, count), one_minus_power(rate2, count))
            if self.nesterov:
                corrections += (one_minus_power(rate1, safe_increment(count)),)
            leaf = functools.partial(
                _adam_leaf,
                b1=self.b1,
                b2=self.b2,
                corrections=corrections,
                eps=self.eps,
                eps_root=self.eps_root,
                nesterov=self.nesterov,
                eps_positive=known_positive(self.eps),
            )
            out, mu, nu = map_arrays_unzipped(leaf, 3, updates, state.mu, state.nu)
            return out, ScaleByAdamState(count=count, mu=mu, nu=nu)
        # Op by op, as optax runs eagerly (its bias correction compiled over the whole tree):
        # optax's values to the bit.
        moments = functools.partial(_moments, b1=self.b1, b2=self.b2)
        grads, mu, nu = map_arrays_unzipped(moments, 3, updates, state.mu, state.nu)
        mu_hat = debiased_first_moment(mu, grads, self.b1, count, self.nesterov)
        out = adaptive_steps(mu_hat, debias_tree(nu, self.b2, count), self.eps, self.eps_root)
        new_state = ScaleByAdamState(
            count=count, mu=store_like(mu, state.mu), nu=store_like(nu, state.nu)
        )
        return cast_like_grads(out, updates), new_state


def _moments(g, m, v, *, b1, b2):
    """``(bounded g, new m, new v)`` in the compute dtype: Adam's moments at one leaf."""
    # The second moment takes the bounded gradient alone: a non-finite gradient already makes
    # m, and so the step, non-finite, and v's kernel is spared the 0 * g.
    bounded = square_bounded(upcast(g))
    grad = nonfinite_kept(bounded, g)
    return grad, ema_update(grad, m, b1), ema_update_sq(bounded, v, b2)


@functools.partial(jax.jit, static_argnames=("nesterov", "eps_positive"))
def _adam_leaf(g, m, v, *, b1, b2, corrections, eps, eps_root, nesterov, eps_positive):
    """``ScaleByAdam.update`` at one leaf inside a trace: ``(step, new m, new v)``, each in
    its slot's dtype; ``corrections``: ``1 - beta1^t``, ``1 - beta2^t`` (and ``1 -
    beta1^(t+1)`` with Nesterov momentum), computed once for all leaves.

    A compiled function of its own: each leaf is one call of it in the step's program, traced
    and lowered once per shape and dtype (XLA inlines the calls, then fuses as before: the same
    program), where the operations written out leaf by leaf made tracing and lowering grow
    with every leaf.
    """
    grad, m_new, v_new = _moments(g, m, v, b1=b1, b2=b2)
    if nesterov:
        m_next = m_new / corrections[2].astype(m_new.dtype)
        grad_hat = upcast(grad) / corrections[0].astype(m_new.dtype)
        m_hat = nesterov_moment(m_next, grad_hat, b1)
    else:
        m_hat = m_new / corrections[0].astype(m_new.dtype)
    v_hat = v_new / corrections[1].astype(v_new.dtype)
    step = over_root(m_hat, safe_sqrt(v_hat + eps_root), eps, eps_positive)
    return step.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype)


@suggest_keywords
def scale_by_adam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    nu_dtype: Any = None,
) -> ScaleByAdam:
    r"""Rescale updates by Adam's bias-corrected moments (``optax.scale_by_adam``).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2,\quad
        u_t = \hat m_t / (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon).

    Gradients beyond :math:`2^{62}` in magnitude enter both moments as :math:`\pm 2^{62}`, and a
    step whose denominator is 0 is 0 (where optax gives inf or NaN).

    Args:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
        such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
        (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
        wider whatever it is.
      nesterov: keyword-only; use Nesterov momentum (NAdam, Dozat, 2016): the step
        uses :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`
        in place of :math:`\hat m_t`.
      nu_dtype: keyword-only, beyond optax: storage dtype of the second-moment slots,
        as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
        where optax would use the parameter dtype for bf16/fp16 parameters).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByAdamState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_adam()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.9999934 -0.9999934]

    References:
      Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980
    """
    return ScaleByAdam(
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
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
    r"""Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    .. math:: \theta_{t+1} = \theta_t - \eta_t \hat m_t /
        (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)

    with the bias-corrected moments of :func:`optim.scale_by_adam`.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
        such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
        (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
        wider whatever it is.
      nesterov: keyword-only; use Nesterov momentum (NAdam, Dozat, 2016): the step
        uses :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`
        in place of :math:`\hat m_t`.
      nu_dtype: keyword-only, beyond optax: storage dtype of the second-moment slots,
        as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
        where optax would use the parameter dtype for bf16/fp16 parameters).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adam(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9000007 -1.9000007]

    References:
      Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        scale_by_learning_rate(learning_rate),
    )


@suggest_keywords
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

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
        such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
        (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
        wider whatever it is.
      weight_decay: strength :math:`\lambda >= 0` of the decoupled weight decay, a number
        or a schedule: :math:`\lambda \theta_t` is added to the direction before the learning
        rate scales it (:func:`optim.add_decayed_weights`).
      mask: where weight decay applies: a pytree of booleans with the structure of the
        params (or a prefix of it), or a function ``params -> such a pytree``; True leaves are
        decayed, False leaves are not. ``None``: every leaf is decayed.
      nesterov: keyword-only; use Nesterov momentum (NAdam, Dozat, 2016): the step
        uses :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`
        in place of :math:`\hat m_t`.
      nu_dtype: keyword-only, beyond optax: storage dtype of the second-moment slots,
        as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
        where optax would use the parameter dtype for bf16/fp16 parameters).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adamw(learning_rate=0.1, weight_decay=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.89000064 -1.8800007 ]

    References:
      Loshchilov & Hutter, 2019, https://arxiv.org/abs/1711.05101
    """
    return chain(
        scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


nadam = functools.partial(adam, nesterov=True)


nadam.__doc__ = r"""NAdam (Dozat, 2016, "Incorporating Nesterov Momentum into Adam").

:func:`optim.adam` with Nesterov momentum: ``functools.partial(adam, nesterov=True)``.

Args:
  learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
    ``count -> number`` evaluated at the number of previous updates (see
    :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
    unnegated, as in optax.
  b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
  b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
    ``[0, 1)``.
  eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
    numerical stability.
  eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
    square root. optax needs a positive value to differentiate through the update
    (meta-learning); here the derivative stays finite at zero gradients without it.
  mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
    such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
    (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
    wider whatever it is.
  nesterov: keyword-only, True here (False gives :func:`optim.adam`): the step uses
    :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)` in place of
    :math:`\hat m_t`.
  nu_dtype: keyword-only, beyond optax: storage dtype of the second-moment slots,
    as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
    where optax would use the parameter dtype for bf16/fp16 parameters).

Returns:
  An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
  hyperparameters are array leaves).

Examples:
  >>> import jax.numpy as jnp
  >>> import optim
  >>> tx = optim.nadam(learning_rate=0.1)
  >>> params = {"w": jnp.array([1.0, -2.0])}
  >>> state = tx.init(params)
  >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
  >>> print(optim.apply_updates(params, updates)["w"])
  [ 0.8526326 -1.8526325]

References:
  Dozat, 2016, https://openreview.net/pdf/OM0jvwB8jIp57ZJjtNEZ.pdf
"""


nadamw = functools.partial(adamw, nesterov=True)


nadamw.__doc__ = r"""NAdamW: AdamW with Nesterov momentum (Dozat, 2016; Loshchilov & Hutter, 2019).

:func:`optim.adamw` with Nesterov momentum: ``functools.partial(adamw, nesterov=True)``.

Args:
  learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
    ``count -> number`` evaluated at the number of previous updates (see
    :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
    unnegated, as in optax.
  b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
  b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
    ``[0, 1)``.
  eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
    numerical stability.
  eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
    square root. optax needs a positive value to differentiate through the update
    (meta-learning); here the derivative stays finite at zero gradients without it.
  mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
    such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
    (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
    wider whatever it is.
  weight_decay: strength :math:`\lambda >= 0` of the decoupled weight decay, a number
    or a schedule: :math:`\lambda \theta_t` is added to the direction before the learning
    rate scales it (:func:`optim.add_decayed_weights`).
  mask: where weight decay applies: a pytree of booleans with the structure of the
    params (or a prefix of it), or a function ``params -> such a pytree``; True leaves are
    decayed, False leaves are not. ``None``: every leaf is decayed.
  nesterov: keyword-only, True here (False gives :func:`optim.adamw`): the step uses
    :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)` in place of
    :math:`\hat m_t`.
  nu_dtype: keyword-only, beyond optax: storage dtype of the second-moment slots,
    as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
    where optax would use the parameter dtype for bf16/fp16 parameters).

Returns:
  An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
  hyperparameters are array leaves).

Examples:
  >>> import jax.numpy as jnp
  >>> import optim
  >>> tx = optim.nadamw(learning_rate=0.1, weight_decay=0.1)
  >>> params = {"w": jnp.array([1.0, -2.0])}
  >>> state = tx.init(params)
  >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
  >>> print(optim.apply_updates(params, updates)["w"])
  [ 0.84263253 -1.8326325 ]

References:
  Dozat, 2016, https://openreview.net/pdf/OM0jvwB8jIp57ZJjtNEZ.pdf
"""

# doctest finds examples in functions and classes only: these make the partials' examples run.
__test__ = {"nadam": nadam.__doc__, "nadamw": nadamw.__doc__}


def _first_moment_slot(params: PyTree, dtype: Any, name: str) -> PyTree:
    """A slot holding a signed moment: complex for complex params, so a real dtype is refused."""
    if dtype is not None and not jnp.issubdtype(dtype, jnp.complexfloating):
        for path, leaf in leaves_with_paths(params):
            if is_trainable(leaf) and jnp.iscomplexobj(leaf):
                raise TypeError(
                    f"{name}={dtype} is real but params{keystr(path)} is {leaf.dtype}: its "
                    f"first moment is complex and would lose its imaginary part. Pass a "
                    f"complex {name} or None."
                )
    return full_like(params, 0.0, dtype)


def _square_safe(updates: PyTree) -> PyTree:
    """The incoming updates in the compute dtype, bounded so that squares stay finite."""
    return map_arrays(lambda g: square_safe(upcast(g)), updates)


@pytree_dataclass
class ScaleByAdamax(Transformation):
    r"""Adamax (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization", sec. 7.1).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \max(|g_t| + \epsilon, \beta_2 v_{t-1}),\quad
        u_t = \hat m_t / v_t.

    Adam with the :math:`L^2` norm of past gradients replaced by the :math:`L^\infty` norm; the
    maximum needs no bias correction, so :math:`\beta_2 = 1` is allowed.

    Attributes:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the infinity norm, in ``[0, 1]`` (the maximum needs
        no bias correction, so 1 is allowed).
      eps: :math:`\epsilon >= 0`, added to :math:`|g_t|` inside the maximum, so the
        denominator stays positive.
      nu_dtype: beyond optax: storage dtype of the infinity norm ``nu``
        (``None``: float32 or the parameter's dtype when wider).

    The fields are the arguments of :func:`optim.scale_by_adamax`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    b1: Any = decay()
    b2: Any = decay(closed=True)
    eps: Any = nonnegative()
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAdamState:
        return ScaleByAdamState.zeros(params, nu_dtype=self.nu_dtype)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        count = safe_increment(state.count)
        mu = map_arrays(lambda g, m: ema_update(g, m, self.b1), updates, state.mu)
        nu = map_arrays(
            lambda g, v: jnp.maximum(
                jnp.abs(upcast(g)) + self.eps, decay_rate(self.b2) * upcast(v)
            ),
            updates,
            state.nu,
        )
        out = map_arrays(lambda m, v: m / v, debias_tree(mu, self.b1, count), nu)
        new_state = ScaleByAdamState(count, store_like(mu, state.mu), store_like(nu, state.nu))
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_adamax(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, *, nu_dtype: Any = None
) -> ScaleByAdamax:
    r"""Rescale updates by Adamax's first moment and infinity norm (``optax.scale_by_adamax``).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \max(|g_t| + \epsilon, \beta_2 v_{t-1}),\quad
        u_t = \hat m_t / v_t.

    Args:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the infinity norm, in ``[0, 1]`` (the maximum needs
        no bias correction, so 1 is allowed).
      eps: :math:`\epsilon >= 0`, added to :math:`|g_t|` inside the maximum, so the
        denominator stays positive.
      nu_dtype: keyword-only, beyond optax: storage dtype of the infinity norm ``nu``
        (``None``: float32 or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByAdamState` (``nu`` holds :math:`v_t`).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_adamax()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.9999998 -0.9999998]

    References:
      Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980 (section 7.1)
    """
    return ScaleByAdamax(
        b1=b1,
        b2=b2,
        eps=eps,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
def adamax(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    *,
    nu_dtype: Any = None,
) -> Chain:
    r"""Adamax (Kingma & Ba, 2015): Adam with the infinity norm of past gradients.

    .. math:: \theta_{t+1} = \theta_t - \eta_t \hat m_t / v_t

    with :math:`v_t = \max(|g_t| + \epsilon, \beta_2 v_{t-1})`; see :func:`optim.scale_by_adamax`.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the infinity norm, in ``[0, 1]`` (the maximum needs
        no bias correction, so 1 is allowed).
      eps: :math:`\epsilon >= 0`, added to :math:`|g_t|` inside the maximum, so the
        denominator stays positive.
      nu_dtype: keyword-only, beyond optax: storage dtype of the infinity norm ``nu``
        (``None``: float32 or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adamax(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.90000004 -1.9       ]

    References:
      Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980 (section 7.1)
    """
    return chain(
        scale_by_adamax(b1, b2, eps, nu_dtype=nu_dtype), scale_by_learning_rate(learning_rate)
    )


@suggest_keywords
def adamaxw(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    nu_dtype: Any = None,
) -> Chain:
    r"""Adamax with decoupled weight decay (Loshchilov & Hutter, 2019).

    .. math:: \theta_{t+1} = \theta_t - \eta_t (\hat m_t / v_t + \lambda \theta_t)

    with the decay applied only where ``mask`` is True.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the infinity norm, in ``[0, 1]`` (the maximum needs
        no bias correction, so 1 is allowed).
      eps: :math:`\epsilon >= 0`, added to :math:`|g_t|` inside the maximum, so the
        denominator stays positive.
      weight_decay: strength :math:`\lambda >= 0` of the decoupled weight decay, a number
        or a schedule: :math:`\lambda \theta_t` is added to the direction before the learning
        rate scales it (:func:`optim.add_decayed_weights`).
      mask: where weight decay applies: a pytree of booleans with the structure of the
        params (or a prefix of it), or a function ``params -> such a pytree``; True leaves are
        decayed, False leaves are not. ``None``: every leaf is decayed.
      nu_dtype: keyword-only, beyond optax: storage dtype of the infinity norm ``nu``
        (``None``: float32 or the parameter's dtype when wider).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.adamaxw(learning_rate=0.1, weight_decay=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.89000005 -1.88      ]

    References:
      Kingma & Ba, 2015, https://arxiv.org/abs/1412.6980;
      Loshchilov & Hutter, 2019, https://arxiv.org/abs/1711.05101
    """
    return chain(
        scale_by_adamax(b1, b2, eps, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


class ScaleByAmsgradState(NamedTuple):
    r"""AMSGrad's step count, moments and the running maximum of the second moment.

    Attributes:
      count: the number of updates so far, an int32 scalar (saturating at its maximum).
      mu: the first moment :math:`m_t`, a pytree like the params (``None`` at frozen leaves).
      nu: the second moment :math:`v_t`, a pytree like the params.
      nu_max: the running maximum :math:`\bar v_t` of the (bias-corrected) second moment.
    """

    count: jax.Array
    mu: PyTree
    nu: PyTree
    nu_max: PyTree

    moment_slots = MappingProxyType({"mu": SIGNED, "nu": UNSIGNED, "nu_max": UNSIGNED})


@pytree_dataclass
class ScaleByAmsgrad(Transformation):
    r"""AMSGrad (Reddi, Kale & Kumar, 2018, "On the Convergence of Adam and Beyond").

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) |g_t|^2,\quad
        \bar v_t = \max(\bar v_{t-1}, \hat v_t),\quad
        u_t = \hat m_t / (\sqrt{\bar v_t + \epsilon_{root}} + \epsilon).

    The second moment never decreases, so the effective step size never grows. Without
    ``bias_correction_mu``/``bias_correction_nu`` the hats are dropped (the paper's form).

    Attributes:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
        such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
        (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
        wider whatever it is.
      bias_correction_mu: divide the first moment by :math:`1 - \beta_1^t` (True, optax's
        default); False uses :math:`m_t` as is (the paper's form).
      bias_correction_nu: divide the second moment by :math:`1 - \beta_2^t` before the
        running maximum (True); False takes the maximum of :math:`v_t` itself.
      nu_dtype: beyond optax: storage dtype of the second-moment slots,
        as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
        where optax would use the parameter dtype for bf16/fp16 parameters).

    The fields are the arguments of :func:`optim.scale_by_amsgrad`, which builds it.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    b1: Any = decay()
    b2: Any = decay()
    eps: Any = nonnegative()
    eps_root: Any = nonnegative()
    mu_dtype: Any = dtype_option()
    bias_correction_mu: bool = flag(True)
    bias_correction_nu: bool = flag(True)
    nu_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> ScaleByAmsgradState:
        return ScaleByAmsgradState(
            count=zero_count(),
            mu=_first_moment_slot(params, self.mu_dtype, "mu_dtype"),
            nu=full_like(params, 0.0, self.nu_dtype),
            nu_max=full_like(params, 0.0, self.nu_dtype),
        )

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        check_updates(updates, state.mu)
        b1, b2 = self.b1, self.b2
        grads = _square_safe(updates)
        mu = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.mu)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, b2), grads, state.nu)
        count = safe_increment(state.count)
        mu_hat = debias_tree(mu, b1, count) if self.bias_correction_mu else mu
        nu_hat = debias_tree(nu, b2, count) if self.bias_correction_nu else nu
        nu_max = map_arrays(lambda v, vmax: jnp.maximum(upcast(vmax), v), nu_hat, state.nu_max)
        out = adaptive_steps(mu_hat, nu_max, self.eps, self.eps_root)
        new_state = ScaleByAmsgradState(
            count=count,
            mu=store_like(mu, state.mu),
            nu=store_like(nu, state.nu),
            nu_max=store_like(nu_max, state.nu_max),
        )
        return cast_like_grads(out, updates), new_state


@suggest_keywords
def scale_by_amsgrad(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> ScaleByAmsgrad:
    r"""Rescale updates by AMSGrad's moments (``optax.scale_by_amsgrad``).

    .. math::
        \bar v_t = \max(\bar v_{t-1}, \hat v_t),\quad
        u_t = \hat m_t / (\sqrt{\bar v_t + \epsilon_{root}} + \epsilon),

    with Adam's moments :math:`m_t, v_t`: the second moment never decreases, so the effective
    step size never grows.

    Args:
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
        such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
        (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
        wider whatever it is.
      bias_correction_mu: divide the first moment by :math:`1 - \beta_1^t` (True, optax's
        default); False uses :math:`m_t` as is (the paper's form).
      bias_correction_nu: divide the second moment by :math:`1 - \beta_2^t` before the
        running maximum (True); False takes the maximum of :math:`v_t` itself.
      nu_dtype: keyword-only, beyond optax: storage dtype of the second-moment slots,
        as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
        where optax would use the parameter dtype for bf16/fp16 parameters).

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to the rescaled direction, without the learning rate
      or its minus sign.
      Its state is a :class:`optim.ScaleByAmsgradState`.

    Raises:
      TypeError: from ``init``, when ``mu_dtype`` is real and a parameter is complex.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_amsgrad()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state)
      >>> print(updates)
      [ 0.9999934 -0.9999934]

    References:
      Reddi, Kale & Kumar, 2018, https://openreview.net/forum?id=ryQu7f-RZ
    """
    return ScaleByAmsgrad(
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        mu_dtype=mu_dtype,
        bias_correction_mu=bias_correction_mu,
        bias_correction_nu=bias_correction_nu,
        nu_dtype=nu_dtype,
    )


@suggest_keywords
def amsgrad(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    nu_dtype: Any = None,
) -> Chain:
    r"""AMSGrad (Reddi, Kale & Kumar, 2018, "On the Convergence of Adam and Beyond").

    .. math:: \theta_{t+1} = \theta_t - \eta_t \hat m_t /
        (\sqrt{\bar v_t + \epsilon_{root}} + \epsilon)

    with :math:`\bar v_t` the running maximum of the second moment; see
    :func:`optim.scale_by_amsgrad`.

    Args:
      learning_rate: the step size :math:`\eta_t`: a number >= 0 or a schedule
        ``count -> number`` evaluated at the number of previous updates (see
        :func:`optim.scale_by_learning_rate`); ``None`` leaves the direction unscaled and
        unnegated, as in optax.
      b1: decay rate :math:`\beta_1` of the first-moment (mean) estimate, in ``[0, 1)``.
      b2: decay rate :math:`\beta_2` of the second-moment (uncentred variance) estimate, in
        ``[0, 1)``.
      eps: :math:`\epsilon >= 0`, added to the denominator outside the square root for
        numerical stability.
      eps_root: :math:`\epsilon_{root} >= 0`, added to the second moment inside the
        square root. optax needs a positive value to differentiate through the update
        (meta-learning); here the derivative stays finite at zero gradients without it.
      mu_dtype: storage dtype of the first moment ``mu`` (a floating or complex dtype
        such as ``jnp.bfloat16``); ``None``: float32, or the parameter's dtype when wider
        (optax keeps bf16/fp16 parameters' own dtype). The arithmetic runs in float32 or
        wider whatever it is.
      bias_correction_mu: divide the first moment by :math:`1 - \beta_1^t` (True, optax's
        default); False uses :math:`m_t` as is (the paper's form).
      bias_correction_nu: divide the second moment by :math:`1 - \beta_2^t` before the
        running maximum (True); False takes the maximum of :math:`v_t` itself.
      nu_dtype: keyword-only, beyond optax: storage dtype of the second-moment slots,
        as ``mu_dtype`` for the first (``None``: float32 or the parameter's dtype when wider,
        where optax would use the parameter dtype for bf16/fp16 parameters).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.amsgrad(learning_rate=0.1)
      >>> params = {"w": jnp.array([1.0, -2.0])}
      >>> state = tx.init(params)
      >>> updates, state = tx.update({"w": jnp.array([0.5, -0.5])}, state, params)
      >>> print(optim.apply_updates(params, updates)["w"])
      [ 0.9000007 -1.9000007]

    References:
      Reddi, Kale & Kumar, 2018, https://openreview.net/forum?id=ryQu7f-RZ
    """
    return chain(
        scale_by_amsgrad(
            b1,
            b2,
            eps,
            eps_root,
            mu_dtype,
            bias_correction_mu,
            bias_correction_nu,
            nu_dtype=nu_dtype,
        ),
        scale_by_learning_rate(learning_rate),
    )
