"""Sophia (Liu et al., 2023): clipped momentum preconditioned by a diagonal Hessian estimate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import decay, dtype_option, flag, nonnegative
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, debias_tree, ema_update, store_like
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    full_like,
    is_trainable,
    map_arrays,
    reject_complex,
    safe_increment,
    upcast,
    zero_count,
)
from optim._types import ScalarOrSchedule
from optim.base import Chain, Transformation, as_transformation, chain, check_updates
from optim.grad import split_arrays
from optim.schedules._schedules import _steps
from optim.transforms._adding import add_decayed_weights
from optim.transforms._scaling import scale_by_learning_rate


class HutchinsonState(NamedTuple):
    """The state of :func:`optim.contrib.hutchinson_estimator_diag_hessian`.

    Attributes:
      key: the PRNG key the next Rademacher probe is drawn from.
    """

    key: jax.Array


@pytree_dataclass
class HutchinsonEstimatorDiagHessian(Transformation):
    r"""Hutchinson's estimator of the Hessian diagonal (Hutchinson, 1989; Sophia-H):
    :math:`\hat h = z \odot (\nabla^2 f(\theta)\, z)` with :math:`z` a Rademacher vector
    (:math:`\pm 1` entries), unbiased since :math:`E[z z^\top] = I`.

    ``update`` ignores the incoming updates and needs ``params`` and the objective
    ``obj_fn(params) -> scalar`` as a keyword argument. Each call splits the key in the state
    once, then draws one probe per parameter leaf (in ``jax.tree.leaves`` order), as optax does,
    so the same seed gives optax's probes. Only floating leaves are probed and differentiated.
    """

    random_seed: Any

    def init(self, params: PyTree) -> HutchinsonState:
        del params
        key = jax.random.PRNGKey(0) if self.random_seed is None else self.random_seed
        return HutchinsonState(key=key)

    def update(self, updates, state, params=None, obj_fn=None, **extra_args):
        del updates, extra_args
        if params is None:
            raise ValueError("hutchinson_estimator_diag_hessian needs params")
        if obj_fn is None:
            raise ValueError(
                "hutchinson_estimator_diag_hessian needs the objective: call "
                "update(grads, state, params, obj_fn=lambda params: loss(params, batch))"
            )
        key, subkey = jax.random.split(state.key)
        leaves = jax.tree.leaves(params)
        keys = jax.random.split(subkey, len(leaves))
        probes = iter(
            jax.random.rademacher(k, leaf.shape, jnp.float32).astype(leaf.dtype)
            for k, leaf in zip(keys, leaves, strict=True)
            if is_trainable(leaf)
        )
        split = split_arrays(params)
        floats = [a if is_trainable(a) else None for a in split.arrays]
        tangents = [None if a is None else next(probes) for a in floats]

        def objective(values: list[Any]) -> jax.Array:
            merged = [v if v is not None else a for v, a in zip(values, split.arrays, strict=True)]
            return obj_fn(split.combine(merged))

        hvp = jax.jvp(jax.grad(objective), (floats,), (tangents,))[1]
        diag = [None if z is None else h * z for h, z in zip(hvp, tangents, strict=True)]
        return jax.tree.unflatten(split.treedef, diag), HutchinsonState(key=key)


def _is_key(value: Any) -> bool:
    """A typed key array or a raw ``uint32`` key (what ``jax.random.PRNGKey`` returns)."""
    dtype = getattr(value, "dtype", None)
    return dtype is not None and (
        jnp.issubdtype(dtype, jax.dtypes.prng_key) or (dtype == jnp.uint32 and value.ndim == 1)
    )


@suggest_keywords
def hutchinson_estimator_diag_hessian(random_seed: Any = None) -> HutchinsonEstimatorDiagHessian:
    r"""Hutchinson's Hessian-diagonal estimator
    (``optax.contrib.hutchinson_estimator_diag_hessian``; Hutchinson, 1989; Sophia-H).

    :math:`\hat h = z \odot (\nabla^2 f(\theta)\, z)` with :math:`z` a Rademacher vector
    (:math:`\pm 1` entries), unbiased since :math:`E[z z^\top] = I`. ``update`` ignores the
    incoming updates and needs ``params`` and the objective as
    ``update(grads, state, params, obj_fn=lambda params: loss(params, batch))``. Each call
    splits the key once, then draws one probe per parameter leaf (in ``jax.tree.leaves``
    order), as optax does, so the same key gives optax's probes. Only floating leaves are
    probed and differentiated.

    Args:
      random_seed: the PRNG key of the first probe, from ``jax.random.PRNGKey(n)`` or
        ``jax.random.key(n)`` (``None``: ``jax.random.PRNGKey(0)``).

    Returns:
      A :class:`optim.GradientTransformation` with state
      :class:`optim.contrib.HutchinsonState` whose updates are the estimated Hessian
      diagonal, a pytree like the params.

    Raises:
      TypeError: ``random_seed`` is not a PRNG key.
      ValueError: in ``update``, no params or no ``obj_fn``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum(jnp.array([1.0, 10.0]) * w**2)
      >>> tx = optim.contrib.hutchinson_estimator_diag_hessian()
      >>> params = jnp.array([1.0, -2.0])
      >>> diag, state = tx.update(None, tx.init(params), params, obj_fn=loss)
      >>> print(diag)  # exact for a diagonal Hessian
      [ 2. 20.]
    """
    if random_seed is not None and not _is_key(random_seed):
        raise TypeError(
            "random_seed must be a PRNG key (jax.random.PRNGKey(seed) or jax.random.key(seed)) "
            f"or None, got {random_seed!r}"
        )
    return HutchinsonEstimatorDiagHessian(random_seed)


class SophiaState(NamedTuple):
    """The state of :func:`optim.contrib.scale_by_sophia`.

    Attributes:
      count: the number of updates so far (int32).
      mu: :math:`m_t`, the momentum (EMA of the gradients), a pytree like the params.
      nu: :math:`h_t`, the EMA of the estimated Hessian diagonal, a pytree like the params.
      hessian_fn_state: the state of ``hessian_diagonal_fn``.
    """

    count: jax.Array
    mu: PyTree
    nu: PyTree
    hessian_fn_state: Any


@pytree_dataclass
class ScaleBySophia(Transformation):
    r"""Sophia (Liu et al., 2023, "Sophia: A Scalable Stochastic Second-order Optimizer for
    Language Model Pre-training", Algorithm 3).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        u_t = \mathrm{clip}\big(\hat m_t / \max(\gamma h_{t-1}, \epsilon), \rho\big),\\
        h_t = \beta_2 h_{t-1} + (1-\beta_2)\hat h_t \text{ every } k \text{ steps
        (} t-1 \equiv 0 \bmod k\text{)}, \text{ else } h_t = h_{t-1},

    with :math:`\hat m_t = m_t / (1-\beta_1^t)` (as optax; the paper does not bias-correct),
    :math:`\rho` = ``clip_threshold`` (None: no clipping), :math:`k` = ``update_interval`` and
    :math:`\hat h_t` from ``hessian_diagonal_fn`` (Hutchinson's estimator by default, given
    ``obj_fn=`` in ``update``'s keyword arguments, which are passed on to it). Real
    parameters only: the update compares and clips values.
    """

    b1: Any = decay()
    b2: Any = decay()
    eps: Any = nonnegative()
    gamma: Any = nonnegative()
    clip_threshold: Any = nonnegative(optional=True)
    hessian_diagonal_fn: Any
    update_interval: int = static(10)
    mu_dtype: Any = dtype_option()
    verbose: bool = flag(False)
    print_win_rate_every_n_steps: int = static(0)

    def init(self, params: PyTree) -> SophiaState:
        reject_complex(params, "sophia", "it divides by max(gamma * h, eps) and clips")
        return SophiaState(
            count=zero_count(),
            mu=full_like(params, 0.0, self.mu_dtype),
            nu=full_like(params),
            hessian_fn_state=self.hessian_diagonal_fn.init(params),
        )

    def update(self, updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("sophia needs params: call update(grads, state, params, obj_fn=...)")
        check_updates(updates, state.mu)
        count = safe_increment(state.count)
        mu = map_arrays(lambda g, m: ema_update(g, m, self.b1), updates, state.mu)
        out = map_arrays(
            lambda m, h: m / jnp.maximum(self.gamma * upcast(h), self.eps),
            debias_tree(mu, self.b1, count),
            state.nu,
        )
        if self.clip_threshold is not None:
            rho = self.clip_threshold
            if self.verbose and self.print_win_rate_every_n_steps > 0:
                self._print_win_rate(out, rho, count)
            out = map_arrays(lambda u: jnp.clip(u, -rho, rho), out)

        def refresh(hessian_state: Any, nu: PyTree) -> tuple[Any, PyTree]:
            diag, hessian_state = self.hessian_diagonal_fn.update(
                updates, hessian_state, params, **extra_args
            )
            check_updates(diag, nu)
            new_nu = map_arrays(lambda h, v: ema_update(h, v, self.b2), diag, nu)
            return hessian_state, store_like(new_nu, nu)

        hessian_state, nu = jax.lax.cond(
            state.count % self.update_interval == 0,
            refresh,
            lambda h, n: (h, n),
            state.hessian_fn_state,
            state.nu,
        )
        new_state = SophiaState(
            count=count, mu=store_like(mu, state.mu), nu=nu, hessian_fn_state=hessian_state
        )
        return cast_like_grads(out, updates), new_state

    def _print_win_rate(self, out: PyTree, rho: jax.Array, count: jax.Array) -> None:
        """Print the fraction of unclipped entries (the paper's "win rate", 0.1-0.5 is healthy)."""
        arrays = jax.tree.leaves(out)
        unclipped = sum(jnp.sum(jnp.abs(u) < rho) for u in arrays)
        rate = unclipped / max(sum(u.size for u in arrays), 1)
        jax.lax.cond(
            count % self.print_win_rate_every_n_steps == 0,
            lambda: jax.debug.print("Sophia optimizer win rate: {}", rate),
            lambda: None,
        )


_HUTCHINSON = hutchinson_estimator_diag_hessian()


@suggest_keywords
def scale_by_sophia(
    b1: Any = 0.965,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    gamma: Any = 0.01,
    clip_threshold: Any = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: Any = _HUTCHINSON,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> ScaleBySophia:
    r"""Sophia's clipped, Hessian-preconditioned momentum (``optax.contrib.scale_by_sophia``).

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        u_t = \mathrm{clip}\big(\hat m_t / \max(\gamma h_{t-1}, \epsilon), \rho\big),\\
        h_t = \beta_2 h_{t-1} + (1-\beta_2)\hat h_t \text{ every } k \text{ steps
        (} t-1 \equiv 0 \bmod k\text{)}, \text{ else } h_t = h_{t-1},

    with :math:`\hat m_t = m_t / (1-\beta_1^t)` (as optax; the paper does not bias-correct)
    and :math:`\hat h_t` from ``hessian_diagonal_fn``. Real parameters only.

    ``update`` needs the params and, for the default estimator, the objective:
    ``update(grads, state, params, obj_fn=lambda p: loss(p, batch))``.

    Args:
      b1: :math:`\beta_1`, the momentum's decay, in ``[0, 1)``.
      b2: :math:`\beta_2`, the decay of the Hessian-diagonal EMA :math:`h`, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, the floor of the denominator :math:`\gamma h`.
      gamma: :math:`\gamma \ge 0`, the factor on :math:`h` in the denominator.
      clip_threshold: :math:`\rho \ge 0`, the element-wise bound of the update (``None``: no
        clipping).
      update_interval: :math:`k`, the Hessian diagonal is estimated every ``k`` steps (the
        first step included), an int >= 1.
      hessian_diagonal_fn: the estimator of :math:`\hat h_t`, a transformation (ours or
        optax's) whose ``update(grads, state, params, **kwargs)`` returns the diagonal;
        default: :func:`optim.contrib.hutchinson_estimator_diag_hessian` with key 0, which
        needs ``obj_fn=``. ``update``'s extra keyword arguments are passed on to it.
      mu_dtype: the storage dtype of the momentum (``None``: float32, or the parameter's dtype
        where wider).
      verbose: print the "win rate" (the fraction of unclipped entries; 0.1-0.5 is healthy)
        with ``jax.debug.print``, when ``print_win_rate_every_n_steps`` > 0 and there is a
        ``clip_threshold``.
      print_win_rate_every_n_steps: print the win rate every that many steps (0: never), an
        int >= 0.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.SophiaState`.

    Raises:
      ValueError: ``update_interval`` below 1, ``print_win_rate_every_n_steps`` below 0, an
        argument out of range; in ``update``, no params (or, for the default estimator, no
        ``obj_fn``).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum(jnp.array([1.0, 10.0]) * (w - 3.0) ** 2)
      >>> params = jnp.array([1.0, -2.0])
      >>> tx = optim.contrib.scale_by_sophia(update_interval=1)
      >>> state = tx.init(params)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params, obj_fn=loss)
      >>> print(updates.round(4), state.nu.round(4))  # clipped at rho; h from [2, 20]
      [-1. -1.] [0.0398 0.398 ]

    References:
      Liu et al., 2023, `Sophia: A Scalable Stochastic Second-order Optimizer for Language
      Model Pre-training <https://arxiv.org/abs/2305.14342>`_.
    """
    return ScaleBySophia(
        b1=b1,
        b2=b2,
        eps=eps,
        gamma=gamma,
        clip_threshold=clip_threshold,
        hessian_diagonal_fn=as_transformation(hessian_diagonal_fn, "hessian_diagonal_fn"),
        update_interval=_steps(update_interval, "update_interval", 1),
        mu_dtype=mu_dtype,
        verbose=verbose,
        print_win_rate_every_n_steps=_steps(
            print_win_rate_every_n_steps, "print_win_rate_every_n_steps"
        ),
    )


@suggest_keywords
def sophia(
    learning_rate: ScalarOrSchedule,
    b1: Any = 0.965,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    weight_decay_mask: Any = None,
    gamma: Any = 0.01,
    clip_threshold: Any = 1.0,
    update_interval: int = 10,
    hessian_diagonal_fn: Any = _HUTCHINSON,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> Chain:
    r"""Sophia with decoupled weight decay (``optax.contrib.sophia``).

    .. math:: \theta_{t+1} = \theta_t - \eta_t (u_t + \lambda\theta_t)

    with :math:`u_t` from :func:`optim.contrib.scale_by_sophia`. Call
    ``update(grads, state, params, obj_fn=lambda p: loss(p, batch))``: the default Hessian
    estimator differentiates ``obj_fn`` twice every ``update_interval`` steps.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        u_t = \mathrm{clip}\big(\hat m_t / \max(\gamma h_{t-1}, \epsilon), \rho\big),\\
        h_t = \beta_2 h_{t-1} + (1-\beta_2)\hat h_t \text{ every } k \text{ steps
        (} t-1 \equiv 0 \bmod k\text{)}, \text{ else } h_t = h_{t-1},

    with :math:`\hat m_t = m_t / (1-\beta_1^t)` (as optax; the paper does not bias-correct)
    and :math:`\hat h_t` from ``hessian_diagonal_fn``. Real parameters only.

    Args:
      learning_rate: :math:`\eta_t`, a number or a schedule ``count -> float``.
      b1: :math:`\beta_1`, the momentum's decay, in ``[0, 1)``.
      b2: :math:`\beta_2`, the decay of the Hessian-diagonal EMA :math:`h`, in ``[0, 1)``.
      eps: :math:`\epsilon \ge 0`, the floor of the denominator :math:`\gamma h`.
      weight_decay: :math:`\lambda`, the decoupled weight decay rate (0: none).
      weight_decay_mask: a pytree of booleans with the structure of the params (or a prefix
        of it), or a function ``params -> such a pytree``: where True, weight decay applies
        (``None``: on every leaf).
      gamma: :math:`\gamma \ge 0`, the factor on :math:`h` in the denominator.
      clip_threshold: :math:`\rho \ge 0`, the element-wise bound of the update (``None``: no
        clipping).
      update_interval: :math:`k`, the Hessian diagonal is estimated every ``k`` steps (the
        first step included), an int >= 1.
      hessian_diagonal_fn: the estimator of :math:`\hat h_t`, a transformation (ours or
        optax's) whose ``update(grads, state, params, **kwargs)`` returns the diagonal;
        default: :func:`optim.contrib.hutchinson_estimator_diag_hessian` with key 0, which
        needs ``obj_fn=``. ``update``'s extra keyword arguments are passed on to it.
      mu_dtype: the storage dtype of the momentum (``None``: float32, or the parameter's dtype
        where wider).
      verbose: print the "win rate" (the fraction of unclipped entries; 0.1-0.5 is healthy)
        with ``jax.debug.print``, when ``print_win_rate_every_n_steps`` > 0 and there is a
        ``clip_threshold``.
      print_win_rate_every_n_steps: print the win rate every that many steps (0: never), an
        int >= 0.

    Returns:
      The :class:`optim.GradientTransformation` chain ``(scale_by_sophia,
      add_decayed_weights, scale_by_learning_rate)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum(jnp.array([1.0, 10.0]) * (w - 3.0) ** 2)
      >>> params = jnp.array([1.0, -2.0])
      >>> tx = optim.contrib.sophia(learning_rate=0.5, weight_decay=0.0)
      >>> state = tx.init(params)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params, obj_fn=loss)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # from 254.0
      122.75

    References:
      Liu et al., 2023, `Sophia: A Scalable Stochastic Second-order Optimizer for Language
      Model Pre-training <https://arxiv.org/abs/2305.14342>`_.
    """
    return chain(
        scale_by_sophia(
            b1,
            b2,
            eps,
            gamma,
            clip_threshold,
            update_interval,
            hessian_diagonal_fn,
            mu_dtype,
            verbose,
            print_win_rate_every_n_steps,
        ),
        add_decayed_weights(weight_decay, weight_decay_mask),
        scale_by_learning_rate(learning_rate),
    )
