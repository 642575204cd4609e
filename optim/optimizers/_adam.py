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
    square_safe,
    store_like,
)
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    full_like,
    is_trainable,
    keystr,
    leaves_with_paths,
    map_arrays,
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
    """Adam's step count and first and second moments."""

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
        b1, b2 = self.b1, self.b2
        grads = _square_safe(updates)
        mu = map_arrays(lambda g, m: ema_update(g, m, b1), grads, state.mu)
        nu = map_arrays(lambda g, v: ema_update_sq(g, v, b2), grads, state.nu)
        count = safe_increment(state.count)
        mu_hat = debiased_first_moment(mu, grads, b1, count, self.nesterov)
        out = adaptive_steps(mu_hat, debias_tree(nu, b2, count), self.eps, self.eps_root)
        new_state = ScaleByAdamState(
            count=count, mu=store_like(mu, state.mu), nu=store_like(nu, state.nu)
        )
        return cast_like_grads(out, updates), new_state


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
    """Rescale updates by Adam's bias-corrected moments (``optax.scale_by_adam``).

    ``mu_dtype``/``nu_dtype`` set the storage dtype of each moment (default: float32, or the
    parameter's dtype when wider); the arithmetic stays float32 whatever they are.
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
    r"""Adam (Kingma & Ba, 2015): :math:`\theta_{t+1} = \theta_t - \eta_t \hat m_t /
    (\sqrt{\hat v_t + \epsilon_{root}} + \epsilon)`; see ``scale_by_adam``."""
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
    """Rescale updates by Adamax's first moment and infinity norm (``optax.scale_by_adamax``)."""
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
    r"""Adamax (Kingma & Ba, 2015): :math:`\theta_{t+1} = \theta_t - \eta_t \hat m_t / v_t`;
    see ``scale_by_adamax``."""
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
    """
    return chain(
        scale_by_adamax(b1, b2, eps, nu_dtype=nu_dtype),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )


class ScaleByAmsgradState(NamedTuple):
    """AMSGrad's step count, moments and the running maximum of the second moment."""

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
    """Rescale updates by AMSGrad's moments (``optax.scale_by_amsgrad``)."""
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
    r"""AMSGrad (Reddi et al., 2018): :math:`\theta_{t+1} = \theta_t - \eta_t \hat m_t /
    (\sqrt{\bar v_t + \epsilon_{root}} + \epsilon)`; see ``scale_by_amsgrad``."""
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
