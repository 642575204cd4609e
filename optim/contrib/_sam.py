"""SAM (Foret et al., 2021): descend from the worst point of a small neighbourhood."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import flag
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_params,
    check_same_structure,
    global_norm,
    map_arrays,
    upcast,
    zero_count,
)
from optim.base import (
    EmptyState,
    Transformation,
    apply_updates,
    as_transformation,
    check_updates,
    require_params,
)
from optim.schedules._schedules import _steps

NormalizeState = EmptyState


@pytree_dataclass
class Normalize(Transformation):
    r"""Divide by the global norm: :math:`u_t = g_t / \lVert g_t \rVert_2` (over all leaves).

    The gradients are first divided by their largest magnitude, so that the norm neither
    underflows (gradients of 1e-30, whose squares are 0 in float32) nor overflows; all-zero
    gradients give zero updates (optax: 0/0 = NaN).
    """

    def init(self, params: PyTree) -> NormalizeState:
        del params
        return NormalizeState()

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        magnitudes = [
            jnp.max(jnp.abs(upcast(g)), initial=0.0)
            for g in jax.tree.leaves(map_arrays(lambda g: g, updates))
        ]
        largest = jnp.max(jnp.stack(magnitudes)) if magnitudes else jnp.float32(0)
        scale = jnp.where(largest > 0, largest, 1)
        scaled = map_arrays(lambda g: upcast(g) / scale, updates)
        norm = global_norm(scaled)
        norm = jnp.where(norm > 0, norm, 1)
        return map_arrays(lambda g, s: (s / norm).astype(g.dtype), updates, scaled), state


@suggest_keywords
def normalize() -> Normalize:
    r"""Normalise updates to unit global norm (``optax.contrib.normalize``): SAM's ascent.

    :math:`u_t = g_t / \lVert g_t \rVert_2`, the norm over all leaves. The gradients are first
    divided by their largest magnitude, so that the norm neither underflows nor overflows;
    all-zero gradients give zero updates (optax: 0/0 = NaN).

    Returns:
      A :class:`optim.GradientTransformation` without state (``NormalizeState``, an empty
      state).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.contrib.normalize()
      >>> grads = {"a": jnp.array([3.0]), "b": jnp.array([0.0, -4.0])}
      >>> updates, _ = tx.update(grads, tx.init(grads))
      >>> print(updates["a"], updates["b"])
      [0.6] [ 0.  -0.8]
    """
    return Normalize()


class SAMState(NamedTuple):
    """The state of :func:`optim.contrib.sam`.

    Attributes:
      steps_since_sync: the calls since the last outer step, in ``[0, sync_period)`` (int32).
      opt_state: the outer ``optimizer``'s state.
      adv_state: the adversarial ``adv_optimizer``'s state.
      cache: the outer parameters :math:`w` (in transparent mode: the caller's parameters
        visit the ascended points meanwhile), a pytree like the params; ``None`` in opaque
        mode.
    """

    steps_since_sync: jax.Array
    opt_state: Any
    adv_state: Any
    cache: PyTree | None


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    """``on_true`` or ``on_false`` (pytrees of one structure), chosen by a traced bool."""
    return jax.tree.map(lambda a, b: jax.lax.select(pred, a, b), on_true, on_false)


@pytree_dataclass
class SAM(Transformation):
    r"""Sharpness-Aware Minimization (Foret et al., 2021, "Sharpness-Aware Minimization for
    Efficiently Improving Generalization", Algorithm 1), as ``optax.contrib.sam``.

    Each cycle of ``sync_period`` calls takes ``sync_period - 1`` ascent steps with the
    adversarial optimizer from the outer parameters :math:`w`, then one outer step from
    :math:`w` with the gradient at the last ascended point:

    .. math::
        \tilde w_{k+1} = \tilde w_k + A(g(\tilde w_k)),\ \tilde w_0 = w,\qquad
        w \leftarrow w + O\big(g(\tilde w_{n-1})\big),

    where :math:`A` is ``adv_optimizer`` with its sign flipped (``chain(normalize(),
    sgd(rho))`` gives the paper's :math:`\tilde w = w + \rho\, g / \lVert g\rVert`) and
    :math:`O` is ``optimizer``. By default (transparent mode) each call returns one of these
    steps, so the caller's parameters visit the ascended points; ``cache`` holds :math:`w`.
    With ``opaque_mode`` one call runs the whole cycle, calling
    ``update(..., grad_fn=lambda params, i: grads)`` for the ascent gradients, and returns the
    outer step only. Extra keyword arguments of ``update`` are passed to both optimizers.
    """

    optimizer: Any
    adv_optimizer: Any
    sync_period: int = static(2)
    reset_state: bool = flag(True)
    opaque_mode: bool = flag(False)
    batch_axis_name: Any = static(None)

    def init(self, params: PyTree) -> SAMState:
        check_params(params)
        return SAMState(
            steps_since_sync=zero_count(),
            opt_state=self.optimizer.init(params),
            adv_state=self.adv_optimizer.init(params),
            cache=None if self.opaque_mode else map_arrays(jnp.array, params),
        )

    def update(
        self,
        updates: PyTree,
        state: SAMState,
        params: PyTree | None = None,
        *,
        grad_fn: Callable[[PyTree, int], PyTree] | None = None,
        **extra_args: Any,
    ) -> tuple[PyTree, SAMState]:
        require_params(params, "sam")
        if self.opaque_mode:
            return self._opaque_update(updates, state, params, grad_fn, extra_args)
        return self._transparent_update(updates, state, params, extra_args)

    def _ascend(self, grads: PyTree, adv_state: Any, params: PyTree, extra: dict) -> Any:
        """One adversarial step, sign flipped: the optimizer descends, SAM ascends."""
        step, adv_state = self.adv_optimizer.update(grads, adv_state, params, **extra)
        return map_arrays(lambda u: -u, step), adv_state

    def _transparent_update(
        self, updates: PyTree, state: SAMState, params: PyTree, extra: dict
    ) -> tuple[PyTree, SAMState]:
        check_updates(updates, state.cache)
        check_same_structure(params, state.cache, "params", "the optimizer state")
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == self.sync_period - 1
        adv_updates, adv_state = self._ascend(updates, state.adv_state, params, extra)
        outer, opt_state = self.optimizer.update(updates, state.opt_state, state.cache, **extra)
        # From the current (ascended) point back to the cache, then the outer step.
        outer = map_arrays(
            lambda c, p, u: upcast(c) - upcast(p) + upcast(u), state.cache, params, outer
        )
        cache = map_arrays(
            lambda p, c: jax.lax.select(first, p.astype(c.dtype), c), params, state.cache
        )
        out = map_arrays(lambda o, a: jax.lax.select(last, o, upcast(a)), outer, adv_updates)
        if self.reset_state:
            adv_state = _select(last, self.adv_optimizer.init(params), adv_state)
        else:
            adv_state = _select(last, state.adv_state, adv_state)
        new_state = SAMState(
            steps_since_sync=(state.steps_since_sync + 1) % self.sync_period,
            opt_state=_select(last, opt_state, state.opt_state),
            adv_state=adv_state,
            cache=cache,
        )
        return cast_like_grads(out, updates), new_state

    def _opaque_update(
        self, updates: PyTree, state: SAMState, params: PyTree, grad_fn: Any, extra: dict
    ) -> tuple[PyTree, SAMState]:
        if grad_fn is None:
            raise ValueError(
                "sam with opaque_mode=True needs grad_fn: call update(grads, state, params, "
                "grad_fn=lambda params, i: jax.grad(loss)(params, batch))"
            )
        grads, adv_params, adv_state = updates, params, state.adv_state
        for i in range(self.sync_period - 1):
            step, adv_state = self._ascend(grads, adv_state, adv_params, extra)
            adv_params = apply_updates(adv_params, step)
            grads = grad_fn(adv_params, i)
            if self.batch_axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name=self.batch_axis_name)
        if self.reset_state:
            adv_state = self.adv_optimizer.init(params)
        out, opt_state = self.optimizer.update(grads, state.opt_state, params, **extra)
        new_state = SAMState(
            steps_since_sync=zero_count(),
            opt_state=opt_state,
            adv_state=adv_state,
            cache=None,
        )
        return out, new_state


@suggest_keywords
def sam(
    optimizer: Any,
    adv_optimizer: Any,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> SAM:
    r"""Sharpness-aware minimisation around an outer ``optimizer`` (Foret et al., 2021;
    ``optax.contrib.sam``).

    Each cycle of ``sync_period`` calls takes ``sync_period - 1`` ascent steps with the
    adversarial optimizer from the outer parameters :math:`w`, then one outer step from
    :math:`w` with the gradient at the last ascended point:

    .. math::
        \tilde w_{k+1} = \tilde w_k + A(g(\tilde w_k)),\ \tilde w_0 = w,\qquad
        w \leftarrow w + O\big(g(\tilde w_{n-1})\big),

    where :math:`A` is ``adv_optimizer`` with its sign flipped and :math:`O` is ``optimizer``.
    The paper's SAM is ``sam(opt, chain(normalize(), sgd(rho)))`` with ``sync_period=2``:
    every other call is the ascent to :math:`w + \rho g/\lVert g\rVert`. ``update`` needs the
    params; its extra keyword arguments reach both optimizers.

    Args:
      optimizer: the outer optimizer :math:`O`, an :class:`optim.GradientTransformation` or
        an optax one.
      adv_optimizer: the adversarial optimizer :math:`A` (ours or optax's), written as a
        descent (SAM flips its sign), e.g. ``chain(normalize(), sgd(rho))``.
      sync_period: the number of calls per cycle, an int >= 1: ``sync_period - 1`` ascent
        steps and one outer step.
      reset_state: re-initialise ``adv_optimizer``'s state after every outer step.
      opaque_mode: ``False`` (transparent): each call returns one step, the ascent steps
        included, so the caller's parameters visit the ascended points and the caller
        computes every gradient. ``True``: one call runs the whole cycle and returns the outer
        step only; ``update`` then needs ``grad_fn=lambda params, i: grads``, the gradient at
        the ascended ``params`` for the ``i``-th ascent step.
      batch_axis_name: in opaque mode, a ``jax.pmap``/``shard_map`` axis name over which the
        gradients of ``grad_fn`` are averaged (``jax.lax.pmean``); ``None``: no averaging.

    Returns:
      A :class:`optim.GradientTransformation` with state :class:`optim.contrib.SAMState`.

    Raises:
      ValueError: ``sync_period`` below 1; in ``update``, no params, or no ``grad_fn`` in
        opaque mode.

    Examples:
      Transparent mode: every call takes the caller's gradient; odd calls ascend.

      >>> import jax, jax.numpy as jnp
      >>> import optim
      >>> def loss(w):
      ...     return jnp.sum((w - 3.0) ** 2)
      >>> ascent = optim.chain(optim.contrib.normalize(), optim.sgd(learning_rate=0.05))
      >>> tx = optim.contrib.sam(optim.sgd(learning_rate=0.1), ascent)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> for _ in range(4):  # two cycles: ascend, descend
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # from 29.0
      11.7547

      Opaque mode: one call per outer step; ``grad_fn`` gives the gradient at the ascended
      point.

      >>> tx = optim.contrib.sam(optim.sgd(learning_rate=0.1), ascent, opaque_mode=True)
      >>> params = jnp.array([1.0, -2.0])
      >>> state = tx.init(params)
      >>> grad_fn = lambda p, i: jax.grad(loss)(p)
      >>> for _ in range(2):
      ...     updates, state = tx.update(jax.grad(loss)(params), state, params, grad_fn=grad_fn)
      ...     params = optim.apply_updates(params, updates)
      >>> print(round(float(loss(params)), 4))  # the outer points of transparent mode
      11.7547

    References:
      Foret et al., 2021, `Sharpness-Aware Minimization for Efficiently Improving
      Generalization <https://arxiv.org/abs/2010.01412>`_.
    """
    return SAM(
        optimizer=as_transformation(optimizer, "optimizer"),
        adv_optimizer=as_transformation(adv_optimizer, "adv_optimizer"),
        sync_period=_steps(sync_period, "sync_period", 1),
        reset_state=reset_state,
        opaque_mode=opaque_mode,
        batch_axis_name=batch_axis_name,
    )
