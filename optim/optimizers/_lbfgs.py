"""L-BFGS: a quasi-Newton direction from a short memory of past steps, and its alias."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import flag, int_option
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads, store_like
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_params,
    check_same_structure,
    full_like,
    map_arrays,
    safe_increment,
    tree_sq_norm,
    tree_vdot,
    upcast,
    zero_count,
)
from optim.base import Chain, Transformation, chain, check_updates, identity, require_params
from optim.optimizers._linesearch import scalar_dtype, scale_by_zoom_linesearch
from optim.transforms._scaling import scale, scale_by_learning_rate


class ScaleByLBFGSState(NamedTuple):
    r"""L-BFGS's memory (optax's field names).

    Attributes:
      count: the number of updates so far, an int32 scalar.
      params: the parameters given to the previous update, a pytree like the params.
      updates: the incoming updates (gradients) of the previous update, a pytree like the
        params.
      diff_params_memory: per leaf, the last ``memory_size`` parameter differences
        :math:`s_j` stacked along a leading axis (a ring buffer indexed by
        ``count % memory_size``).
      diff_updates_memory: per leaf, the last ``memory_size`` gradient differences :math:`y_j`,
        stacked as ``diff_params_memory``.
      weights_memory: the :math:`\\rho_j = 1 / \\langle y_j, s_j\\rangle` of the remembered steps
        (0 for empty slots), a vector of length ``memory_size``.
    """

    count: jax.Array
    params: PyTree
    updates: PyTree
    diff_params_memory: PyTree
    diff_updates_memory: PyTree
    weights_memory: jax.Array


def _sub(x: PyTree, y: PyTree) -> PyTree:
    return map_arrays(lambda a, b: upcast(a) - upcast(b), x, y)


def _scaled_add(x: PyTree, scalar: jax.Array, y: PyTree) -> PyTree:
    return map_arrays(lambda a, b: (a + scalar * b).astype(a.dtype), x, y)


def _precondition(
    updates: PyTree,
    diff_params: PyTree,
    diff_updates: PyTree,
    rhos: jax.Array,
    gamma: jax.Array,
    newest: jax.Array,
) -> PyTree:
    r""":math:`H_k g` by the two-loop recursion (Nocedal & Wright, Algorithm 7.4).

    The memory slots are visited from the most recent one (``newest - 1``) back, then
    forward; an empty slot has :math:`\rho_j = 0` and changes nothing.
    """
    memory_size = rhos.shape[0]
    order = (newest + jnp.arange(memory_size)) % memory_size

    def slot(tree: PyTree, j: jax.Array) -> PyTree:
        return map_arrays(lambda x: x[j], tree)

    def backward(q, j):
        alpha = rhos[j] * jnp.real(tree_vdot(slot(diff_params, j), q))
        return _scaled_add(q, -alpha, slot(diff_updates, j)), alpha

    q, alphas = jax.lax.scan(backward, updates, order, reverse=True)
    r = map_arrays(lambda x: gamma * x, q)

    def forward(r, j_alpha):
        j, alpha = j_alpha
        beta = rhos[j] * jnp.real(tree_vdot(slot(diff_updates, j), r))
        return _scaled_add(r, alpha - beta, slot(diff_params, j)), None

    r, _ = jax.lax.scan(forward, r, (order, alphas))
    return r


@pytree_dataclass
class ScaleByLBFGS(Transformation):
    r"""The L-BFGS direction (Liu & Nocedal, 1989, "On the limited memory BFGS method for
    large scale optimization"; Nocedal & Wright, 2006, "Numerical Optimization", Alg. 7.4).

    With :math:`s_j = \theta_{j+1} - \theta_j`, :math:`y_j = g_{j+1} - g_j`,
    :math:`\rho_j = 1 / \langle y_j, s_j\rangle` (0 when that is 0) for the last
    :math:`m` = ``memory_size`` steps:

    .. math::
        u_k = H_k g_k,\quad H_{j+1} = V_j^\top H_j V_j + \rho_j s_j s_j^\top,\quad
        V_j = I - \rho_j y_j s_j^\top,\quad H_{k-m} = \gamma_k I,

    :math:`\gamma_k = \langle s_{k-1}, y_{k-1}\rangle / \|y_{k-1}\|^2` with
    ``scale_init_precond`` (else 1), and :math:`\gamma_0 = \min(1, 1/\|g_0\|)` so the first
    step has length at most 1. The memory is updated from the parameters and updates it is
    given before the direction is computed, so a line search later in the chain decides the
    step that enters it. Needs ``params``.

    Attributes:
      memory_size: the number :math:`m >= 1` of past steps remembered (a static int: the
        state holds :math:`m` copies of the parameters' shapes, twice).
      scale_init_precond: start the two-loop recursion from
        :math:`\gamma_k = \langle s_{k-1}, y_{k-1}\rangle / \|y_{k-1}\|^2` (True) rather than 1.

    The fields are the arguments of :func:`optim.scale_by_lbfgs`, which builds it.
    """

    memory_size: int = int_option(10, low=1)
    scale_init_precond: bool = flag(True)

    def init(self, params: PyTree) -> ScaleByLBFGSState:
        check_params(params)
        # Broadcast from the parameter's zeros, so each slot keeps the parameter's sharding.
        stacked = map_arrays(
            lambda p: jnp.broadcast_to(
                jnp.zeros_like(p, upcast(p).dtype)[None], (self.memory_size, *p.shape)
            ),
            params,
        )
        return ScaleByLBFGSState(
            count=zero_count(),
            params=full_like(params, 0.0),
            updates=full_like(params, 0.0),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
            weights_memory=jnp.zeros([self.memory_size], scalar_dtype(params)),
        )

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        require_params(params, "scale_by_lbfgs")
        check_updates(updates, state.updates)
        check_same_structure(params, state.params, "params", "the optimizer state")
        m = self.memory_size
        newest, previous = state.count % m, (state.count - 1) % m
        started = state.count > 0
        # The step just taken, and the change of gradient it brought (none before step 1).
        s = map_arrays(lambda d: jnp.where(started, d, 0), _sub(params, state.params))
        y = map_arrays(lambda d: jnp.where(started, d, 0), _sub(updates, state.updates))
        sy = jnp.real(tree_vdot(y, s))
        rho = jnp.where(started & (sy != 0.0), 1.0 / sy, 0.0).astype(state.weights_memory.dtype)

        def remember(memory, new):
            return map_arrays(lambda buf, x: buf.at[previous].set(x.astype(buf.dtype)), memory, new)

        diff_params = remember(state.diff_params_memory, s)
        diff_updates = remember(state.diff_updates_memory, y)
        rhos = state.weights_memory.at[previous].set(rho)

        if self.scale_init_precond:
            yy = tree_sq_norm(y)
            gamma = jnp.where(yy > 0.0, sy / yy, 1.0)
            first = jnp.minimum(1.0, 1.0 / jnp.sqrt(tree_sq_norm(jax.lax.stop_gradient(updates))))
            gamma = jnp.where(started, gamma, first)
        else:
            gamma = jnp.ones([], rhos.dtype)
        direction = _precondition(
            map_arrays(upcast, updates), diff_params, diff_updates, rhos, gamma, newest
        )
        new_state = ScaleByLBFGSState(
            count=safe_increment(state.count),
            params=store_like(params, state.params),
            updates=store_like(updates, state.updates),
            diff_params_memory=diff_params,
            diff_updates_memory=diff_updates,
            weights_memory=rhos,
        )
        return cast_like_grads(direction, updates), new_state


@suggest_keywords
def scale_by_lbfgs(memory_size: int = 10, scale_init_precond: bool = True) -> ScaleByLBFGS:
    r"""Precondition updates by L-BFGS's inverse-Hessian estimate (``optax.scale_by_lbfgs``).

    With :math:`s_j = \theta_{j+1} - \theta_j`, :math:`y_j = g_{j+1} - g_j` and
    :math:`\rho_j = 1 / \langle y_j, s_j\rangle` for the last :math:`m` steps, the output is
    :math:`H_k g_k` by the two-loop recursion (Nocedal & Wright, 2006, Algorithm 7.4); the first
    step is :math:`\min(1, 1/\|g_0\|)\,g_0`. The memory is updated from the params and
    updates each call receives, so a line search later in the chain decides the step that
    enters it.

    Args:
      memory_size: the number :math:`m >= 1` of past steps remembered (a static int: the
        state holds :math:`m` copies of the parameters' shapes, twice).
      scale_init_precond: start the two-loop recursion from
        :math:`\gamma_k = \langle s_{k-1}, y_{k-1}\rangle / \|y_{k-1}\|^2` (True) rather than 1.

    Returns:
      An :class:`optim.GradientTransformation` (a pytree whose hyperparameters are array
      leaves); ``update`` maps gradients to :math:`H_k g_k`, without minus sign, and needs
      ``params`` (``ValueError`` without them). Its state is a :class:`optim.ScaleByLBFGSState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.scale_by_lbfgs()
      >>> grads = jnp.array([0.5, -0.5])
      >>> state = tx.init(grads)
      >>> updates, state = tx.update(grads, state, jnp.zeros(2))
      >>> print(updates)
      [ 0.5 -0.5]

    References:
      Liu & Nocedal, 1989, https://doi.org/10.1007/BF01589116;
      Nocedal & Wright, 2006, "Numerical Optimization", Algorithm 7.4
    """
    return ScaleByLBFGS(
        memory_size=memory_size,
        scale_init_precond=scale_init_precond,
    )


class _DefaultLinesearch:
    """Stands for lbfgs's default line search, built at call time: creating arrays when
    ``optim`` is imported would start JAX's backend (and claim GPU memory) at import."""

    def __repr__(self) -> str:
        return "scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy='one')"


_DEFAULT_LINESEARCH: Any = _DefaultLinesearch()


@suggest_keywords
def lbfgs(
    learning_rate: Any = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = _DEFAULT_LINESEARCH,
) -> Chain:
    r"""L-BFGS with a zoom line search (Nocedal & Wright, 2006, Algorithms 7.5 and 3.5-3.6).

    .. math:: \theta_{k+1} = \theta_k - \eta_k H_k g_k,

    :math:`H_k g_k` from :func:`optim.scale_by_lbfgs`, :math:`\eta_k` from ``linesearch`` times
    ``learning_rate`` when one is given. Its ``update`` needs ``value=``, ``grad=`` and
    ``value_fn=`` as in optax (see :func:`optim.scale_by_zoom_linesearch`).

    Args:
      learning_rate: a number >= 0 or a schedule multiplying the step the line search picks;
        ``None``: no extra factor (the direction is only negated).
      memory_size: the number :math:`m >= 1` of past steps remembered (a static int: the
        state holds :math:`m` copies of the parameters' shapes, twice).
      scale_init_precond: start the two-loop recursion from
        :math:`\gamma_k = \langle s_{k-1}, y_{k-1}\rangle / \|y_{k-1}\|^2` (True) rather than 1.
      linesearch: the transformation choosing the step size along the direction, last in the
        chain; by default ``scale_by_zoom_linesearch(max_linesearch_steps=20,
        initial_guess_strategy="one")``; ``None``: no line search (step size 1 times
        ``learning_rate``).

    Returns:
      An :class:`optim.GradientTransformation` (a ``chain`` of building blocks; a pytree whose
      hyperparameters are array leaves).

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> f = lambda x: jnp.sum((x - 1.0) ** 2)
      >>> tx, x = optim.lbfgs(), jnp.zeros(3)
      >>> state = tx.init(x)
      >>> value_and_grad = optim.value_and_grad_from_state(f)
      >>> for _ in range(2):
      ...     value, grad = value_and_grad(x, state=state)
      ...     u, state = tx.update(grad, state, x, value=value, grad=grad, value_fn=f)
      ...     x = optim.apply_updates(x, u)
      >>> print(x)
      [1. 1. 1.]

    References:
      Liu & Nocedal, 1989, https://doi.org/10.1007/BF01589116;
      Nocedal & Wright, 2006, "Numerical Optimization"
    """
    if linesearch is _DEFAULT_LINESEARCH:
        linesearch = scale_by_zoom_linesearch(20, initial_guess_strategy="one")
    return chain(
        scale_by_lbfgs(memory_size, scale_init_precond),
        scale(-1.0) if learning_rate is None else scale_by_learning_rate(learning_rate),
        identity() if linesearch is None else linesearch,
    )
