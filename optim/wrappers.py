"""Wrappers: change which leaves, which steps or which layout a transformation sees.

Each wrapper is a pytree whose children are the wrapped transformation (so its float
hyperparameters stay leaves) and its own float hyperparameters; masks, step counts, flags and
functions are static metadata. Names, arguments, defaults and state fields follow optax:
``masked``, ``apply_if_finite``, ``MultiSteps``, ``lookahead``, ``flatten`` and
``inject_hyperparams``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import (
    FunctionSchedule,
    check_flag,
    decay_hyper,
    hyper,
    is_pytree_schedule,
    value_at,
)
from optim._numerics import canonical_dtype, cast_like_grads, decay_complement, decay_rate
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_params,
    check_prefix,
    check_same_structure,
    full_like,
    is_array,
    is_trainable,
    is_tree_function,
    keystr,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim.base import Transformation, as_transformation, check_updates
from optim.tree._map_params import is_params_placeholder

__all__ = [
    "ApplyIfFiniteState",
    "InjectHyperparamsState",
    "InjectStatefulHyperparamsState",
    "LookaheadParams",
    "LookaheadState",
    "MaskedNode",
    "MaskedState",
    "MultiSteps",
    "MultiStepsState",
    "ShouldSkipUpdateFunction",
    "StatefulSchedule",
    "WrappedSchedule",
    "apply_if_finite",
    "flatten",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "lookahead",
    "masked",
    "skip_large_updates",
    "skip_not_finite",
]


# --- shared helpers -----------------------------------------------------------------------


def _zeros_like(updates: PyTree) -> PyTree:
    """Zero updates: zeros where ``updates`` holds floating arrays, ``None`` elsewhere."""
    return map_arrays(jnp.zeros_like, updates)


def _like(new: PyTree, old: PyTree) -> PyTree:
    """``new`` with every array cast to the dtype of its counterpart in ``old``.

    The two branches of ``lax.cond`` must return identical types; an inner optimizer from
    optax may return a state whose dtypes (or weak types) differ from the ones it was given.
    """
    return jax.tree.map(lambda n, o: jnp.asarray(n, o.dtype) if is_array(o) else n, new, old)


def _all_finite(updates: PyTree) -> jax.Array:
    """True when no floating leaf of ``updates`` holds a NaN or an infinity."""
    checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(updates) if is_trainable(x)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.array(True)


def _positive_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


# --- masked -------------------------------------------------------------------------------


class MaskedState(NamedTuple):
    """The wrapped transformation's state, built from the selected leaves only."""

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands for a masked-out part of the parameters in the tree ``masked`` gives its inner
    transformation (and so in the inner state), as ``optax.MaskedNode``.

    An empty NamedTuple: a pytree node without children, so ``jax.tree.map`` skips it.
    """


@dataclasses.dataclass(frozen=True)
class StaticTree:
    """A pytree of Python values held as static metadata (a mask, labels).

    Hashed and compared by value, so re-creating an optimizer with an equal mask reuses the
    compiled program.
    """

    treedef: Any
    leaves: tuple

    def value(self) -> PyTree:
        return jax.tree.unflatten(self.treedef, self.leaves)


def _is_none(x: Any) -> bool:
    return x is None


def _none_like(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda _: None, tree, is_leaf=_is_none)


def _masked_out(sub: PyTree, like: PyTree | None = None) -> PyTree:
    """What the inner transformation sees for a masked-out subtree ``sub``.

    ``MaskedNode()``, as in optax, where the subtree holds a floating array (in ``like``, the
    updates at that place, when given); otherwise ``sub`` with ``None`` leaves. Functions,
    Python numbers and integer arrays of an equinox or flax model get ``None`` updates, and a
    mask function called on the updates has no entry there: hiding them as ``None`` at
    ``init`` (from the params) and at ``update`` (from the updates) gives the inner
    transformation the same structure both times.
    """
    like = sub if like is None else like
    if any(is_trainable(x) for x in jax.tree.leaves(like)):
        return MaskedNode()
    return _none_like(sub)


@pytree_dataclass
class Masked(Transformation):
    r"""Apply ``inner`` to the leaves where the mask is True; pass the others through.

    :math:`u_t = T(g_t)` on selected leaves, :math:`u_t = g_t` elsewhere. Unselected parts
    are hidden from ``inner`` as ``MaskedNode()`` (as in optax; ``None`` leaves where they
    hold no floating array), so they get no state.
    """

    inner: Any
    mask: Any = static()
    mask_compatible_extra_args: bool = static(False)

    def _mask_tree(self, tree: PyTree) -> PyTree:
        mask = self.mask.value() if isinstance(self.mask, StaticTree) else self.mask(tree)
        for path, m in jax.tree_util.tree_flatten_with_path(mask)[0]:
            if not isinstance(m, bool):
                raise TypeError(
                    f"mask{keystr(path)} must be a Python bool (masks are static), got {m!r}"
                )
        return mask

    def _hide(self, tree: PyTree, mask: PyTree, tree_name: str = "params") -> PyTree:
        check_prefix(mask, tree, "mask", tree_name)
        return jax.tree.map(lambda m, sub: sub if m else _masked_out(sub), mask, tree)

    def _hide_params(self, params: PyTree, mask: PyTree, updates: PyTree) -> PyTree:
        """``params`` hidden as ``updates`` are by ``mask`` (made from the updates).

        Where an update is ``None`` a mask function has no entry (a ``None`` in ``mask``);
        the parameter there (a function of an equinox model) is hidden as ``None`` too.
        """
        return jax.tree.map(
            lambda m, u, p: None if m is None else (p if m else _masked_out(p, like=u)),
            mask,
            updates,
            params,
            is_leaf=_is_none,
        )

    def init(self, params: PyTree) -> MaskedState:
        if is_params_placeholder(params):
            # map_params finds the parameter slots of the inner state: it needs them whole.
            return MaskedState(self.inner.init(params))
        return MaskedState(self.inner.init(self._hide(params, self._mask_tree(params))))

    def update(self, updates, state, params=None, **extra_args):
        mask = self._mask_tree(updates)
        if params is not None:
            check_same_structure(updates, params, "grads", "params")
        hidden_updates = self._hide(updates, mask, "grads")
        hidden_params = None if params is None else self._hide_params(params, mask, updates)
        if self.mask_compatible_extra_args:
            structure = jax.tree.structure(updates)
            extra_args = {
                k: self._hide(v, mask) if jax.tree.structure(v) == structure else v
                for k, v in extra_args.items()
            }
        new, inner_state = self.inner.update(
            hidden_updates, state.inner_state, hidden_params, **extra_args
        )
        merged = jax.tree.map(lambda m, n, o: n if m else o, mask, new, updates)
        return merged, MaskedState(inner_state)


def masked(inner: Any, mask: Any, *, mask_compatible_extra_args: bool = False) -> Masked:
    """Apply ``inner`` only where ``mask`` (a bool pytree or a function of params) is True.

    With ``mask_compatible_extra_args``, extra keyword arguments of ``update`` that have the
    structure of the updates are masked too (as in ``optax.masked``). A mask tree is static
    and compared by value (an equal mask reuses the compiled program); a mask function is
    compared by identity, so pass the same function object to avoid recompiling.
    """
    inner = as_transformation(inner, "inner")
    if not is_tree_function(mask):
        leaves, treedef = jax.tree.flatten(mask)
        mask = StaticTree(treedef, tuple(leaves))
    return Masked(inner, mask, check_flag(mask_compatible_extra_args, "mask_compatible_extra_args"))


# --- apply_if_finite ----------------------------------------------------------------------


class ApplyIfFiniteState(NamedTuple):
    """Counters of rejected steps and the wrapped transformation's state (optax's fields).

    ``notfinite_count``: consecutive steps with a NaN or infinity (reset by a finite one);
    ``last_finite``: whether the last step's updates were finite; ``total_notfinite``: all
    such steps since ``init``.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    inner_state: Any


@pytree_dataclass
class ApplyIfFinite(Transformation):
    r"""Skip steps whose updates hold a NaN or an infinity.

    With :math:`c_t` the number of consecutive non-finite steps up to step :math:`t`:

    .. math:: (u_t, s_t) = \begin{cases} T(g_t, s_{t-1}) & g_t \text{ finite or }
        c_t > \text{max\_consecutive\_errors} \\ (0, s_{t-1}) & \text{otherwise.}\end{cases}

    A rejected step leaves the inner state bit for bit as it was (its step count and bias
    correction included) and returns zero updates.
    """

    inner: Any
    max_consecutive_errors: int = static()

    def init(self, params: PyTree) -> ApplyIfFiniteState:
        zero = zero_count()
        return ApplyIfFiniteState(zero, jnp.array(True), zero, self.inner.init(params))

    def update(self, updates, state, params=None, **extra_args):
        finite = _all_finite(updates)
        notfinite_count = jnp.where(finite, 0, safe_increment(state.notfinite_count))

        def apply():
            new, inner_state = self.inner.update(updates, state.inner_state, params, **extra_args)
            return new, _like(inner_state, state.inner_state)

        new_updates, inner_state = jax.lax.cond(
            finite | (notfinite_count > self.max_consecutive_errors),
            apply,
            lambda: (_zeros_like(updates), state.inner_state),
        )
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        return new_updates, ApplyIfFiniteState(notfinite_count, finite, total, inner_state)


def apply_if_finite(inner: Any, max_consecutive_errors: int) -> ApplyIfFinite:
    """Ignore updates with NaNs or infinities, up to ``max_consecutive_errors`` in a row.

    After that many consecutive rejected steps the next non-finite update is applied, as in
    ``optax.apply_if_finite``.

    >>> import jax.numpy as jnp, optim
    >>> tx = optim.apply_if_finite(optim.sgd(0.1), max_consecutive_errors=3)
    >>> state = tx.init({"w": jnp.ones(2)})
    >>> updates, state = tx.update({"w": jnp.array([1.0, jnp.nan])}, state)
    >>> int(state.total_notfinite), updates["w"].tolist()
    (1, [0.0, 0.0])
    """
    return ApplyIfFinite(
        as_transformation(inner, "inner"),
        _positive_int(max_consecutive_errors, "max_consecutive_errors", 0),
    )


# --- MultiSteps ---------------------------------------------------------------------------


class MultiStepsState(NamedTuple):
    """Gradient accumulation: the position within the current group of mini-steps, the number
    of inner steps taken, the inner state, the accumulated gradient and the skip function's
    record (optax's fields)."""

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: Any
    acc_grads: PyTree
    skip_state: Any = ()


class ShouldSkipUpdateFunction(Protocol):
    """The type of ``MultiSteps``'s ``should_skip_update_fn`` (optax's protocol).

    Called with the proposed updates, the number of inner steps taken so far and the params
    (or None); returns a boolean scalar (True: ignore this mini-step) and any pytree of
    arrays, kept in ``MultiStepsState.skip_state`` (for example what the decision was based
    on). ``skip_not_finite`` and ``skip_large_updates`` are two.
    """

    def __call__(
        self, updates: PyTree, gradient_step: jax.Array, params: PyTree | None
    ) -> tuple[jax.Array, PyTree]: ...


def skip_not_finite(
    updates: PyTree, gradient_step: jax.Array, params: PyTree | None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A ``should_skip_update_fn`` for ``MultiSteps``: skip when any update is NaN or infinite.

    Returns the decision and ``{"should_skip", "num_not_finite"}``, as ``optax.skip_not_finite``.
    """
    del gradient_step, params
    counts = [jnp.sum(~jnp.isfinite(x)) for x in jax.tree.leaves(updates) if is_trainable(x)]
    num_not_finite = sum(counts, zero_count())
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(
    updates: PyTree, gradient_step: jax.Array, params: PyTree | None, max_squared_norm: Any
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """A ``should_skip_update_fn``: skip when the squared global norm is not below the bound.

    Bind ``max_squared_norm`` with ``functools.partial``. NaN norms are skipped too. Returns the
    decision and ``{"should_skip", "norm_squared"}``, as ``optax.skip_large_updates``.
    """
    del gradient_step, params
    squares = [
        jnp.sum(jnp.abs(upcast(x)) ** 2) for x in jax.tree.leaves(updates) if is_trainable(x)
    ]
    norm_sq = sum(squares, jnp.zeros([], jnp.float32))
    should_skip = ~(norm_sq < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}


def _never_skip(updates: PyTree, gradient_step: jax.Array, params: PyTree | None) -> Any:
    del updates, gradient_step, params
    return jnp.array(False), ()


@pytree_dataclass
class MultiSteps(Transformation):
    r"""Gradient accumulation: one inner step every :math:`k` calls (optax's ``MultiSteps``).

    With :math:`n` the mini-step within the current group of :math:`k` (``every_k_schedule``
    of the number of inner steps taken):

    .. math:: a_n = a_{n-1} + (g - a_{n-1}) / (n + 1)\ \text{(mean, Welford)}\quad
        \text{or}\quad a_n = a_{n-1} + g\ \text{(sum)};

    at :math:`n = k - 1` the inner optimizer is applied to :math:`a_n` and :math:`a` is
    reset; other calls return zero updates. One accumulation buffer, in
    ``accumulator_dtype`` (by default float32 for bf16/fp16 parameters and each parameter's
    own dtype otherwise). A mini-step that ``should_skip_update_fn`` rejects changes nothing
    but ``skip_state``.

    Use it as optax's class: ``opt = MultiSteps(optim.adam(1e-3), every_k_schedule=4)``, then
    ``opt.init``, ``opt.update``, ``opt.has_updated(state)``; it is a pytree itself, so
    ``opt.gradient_transformation()`` returns ``opt``.
    """

    opt: Any
    every_k_schedule: Any = static()
    use_grad_mean: bool = static(True)
    should_skip_update_fn: Any = static(None)
    accumulator_dtype: Any = static(None, kw_only=True)

    def __post_init__(self) -> None:
        # Runs on every unflatten too: only normalises static fields (always real values)
        # and wraps an optax GradientTransformation, which unflatten never passes.
        if isinstance(self.opt, tuple) and callable(getattr(self.opt, "update", None)):
            object.__setattr__(self, "opt", as_transformation(self.opt, "opt"))
        if not callable(self.every_k_schedule):
            _positive_int(self.every_k_schedule, "every_k_schedule", 1)
        if self.should_skip_update_fn is not None and not callable(self.should_skip_update_fn):
            raise TypeError(
                f"should_skip_update_fn must be a function, got {self.should_skip_update_fn!r}"
            )
        dtype = canonical_dtype(self.accumulator_dtype, "accumulator_dtype")
        object.__setattr__(self, "accumulator_dtype", dtype)
        object.__setattr__(self, "use_grad_mean", bool(self.use_grad_mean))

    @property
    def inner_opt(self) -> Any:
        return self.opt

    def _k(self, gradient_step: jax.Array) -> Any:
        if callable(self.every_k_schedule):
            return self.every_k_schedule(gradient_step)
        return self.every_k_schedule

    def _should_skip(self, updates: PyTree, gradient_step: jax.Array, params: PyTree) -> Any:
        skip, skip_state = (self.should_skip_update_fn or _never_skip)(
            updates, gradient_step, params
        )
        skip = jnp.asarray(skip)
        if skip.dtype != jnp.bool_ or skip.shape != ():
            raise ValueError(
                "should_skip_update_fn must return a boolean scalar first, got an array of "
                f"dtype {skip.dtype} and shape {skip.shape}"
            )
        return skip, skip_state

    def init(self, params: PyTree) -> MultiStepsState:
        check_params(params)
        gradient_step = zero_count()
        _, skip_state = self._should_skip(_zeros_like(params), gradient_step, params)
        return MultiStepsState(
            mini_step=zero_count(),
            gradient_step=gradient_step,
            inner_opt_state=self.opt.init(params),
            acc_grads=full_like(params, 0.0, self.accumulator_dtype),
            skip_state=skip_state,
        )

    def update(self, updates, state, params=None, **extra_args):
        check_updates(updates, state.acc_grads)
        k = self._k(state.gradient_step)
        skip, skip_state = self._should_skip(updates, state.gradient_step, params)
        n = state.mini_step

        def accumulate_leaf(g: jax.Array, a: jax.Array) -> jax.Array:
            if self.use_grad_mean:
                return upcast(a) + (upcast(g) - upcast(a)) / (n + 1)
            return upcast(a) + upcast(g)

        def accumulate():
            acc = map_arrays(accumulate_leaf, updates, state.acc_grads)
            emit = n == k - 1

            def step():
                new, inner_state = self.opt.update(
                    cast_like_grads(acc, updates), state.inner_opt_state, params, **extra_args
                )
                return new, _like(inner_state, state.inner_opt_state)

            new_updates, inner_state = jax.lax.cond(
                emit, step, lambda: (_zeros_like(updates), state.inner_opt_state)
            )
            new_state = MultiStepsState(
                mini_step=(safe_increment(n) % k).astype(jnp.int32),
                gradient_step=jnp.where(
                    emit, safe_increment(state.gradient_step), state.gradient_step
                ),
                inner_opt_state=inner_state,
                acc_grads=map_arrays(
                    lambda a, old: jnp.where(emit, 0, a).astype(old.dtype), acc, state.acc_grads
                ),
                skip_state=skip_state,
            )
            return new_updates, new_state

        def skip_step():
            return _zeros_like(updates), state._replace(skip_state=skip_state)

        return jax.lax.cond(skip, skip_step, accumulate)

    def has_updated(self, state: Any) -> jax.Array:
        """True right after a call that applied the inner optimizer."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> MultiSteps:
        """This object (it has ``init`` and ``update`` and is a pytree), as optax's method."""
        return self


# --- lookahead ----------------------------------------------------------------------------


class LookaheadState(NamedTuple):
    """The fast optimizer's state and the fast steps taken since the last synchronisation."""

    fast_state: Any
    steps_since_sync: jax.Array


class LookaheadParams(NamedTuple):
    """Fast parameters (compute gradients with these) and slow ones (evaluate these)."""

    fast: PyTree
    slow: PyTree

    @classmethod
    def init_synced(cls, params: PyTree) -> LookaheadParams:
        """Fast and slow parameters both equal to ``params``."""
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
    :math:`u_\theta = 0` and :math:`u_\phi = u` otherwise.
    """

    fast_optimizer: Any
    sync_period: int = static()
    slow_step_size: Any
    reset_state: bool = static(False)

    def init(self, params: PyTree) -> LookaheadState:
        fast = getattr(params, "fast", None)
        if fast is None:
            warnings.warn(
                "lookahead init got params without a `fast` attribute; treating them as the "
                "fast parameters. Pass LookaheadParams.init_synced(params).",
                stacklevel=2,
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


def lookahead(
    fast_optimizer: Any, sync_period: int, slow_step_size: Any, reset_state: bool = False
) -> Lookahead:
    """Lookahead around ``fast_optimizer`` (``optax.lookahead``).

    Params are ``LookaheadParams(fast, slow)``; compute gradients at ``params.fast`` and apply
    the returned updates unchanged with ``apply_updates``. ``reset_state`` re-initialises the
    fast optimizer's state at each synchronisation.
    """
    return Lookahead(
        fast_optimizer=as_transformation(fast_optimizer, "fast_optimizer"),
        sync_period=_positive_int(sync_period, "sync_period", 1),
        # with 1 - slow_step_size from the Python number, as optax computes it
        slow_step_size=decay_hyper(slow_step_size, "slow_step_size", closed=True),
        reset_state=check_flag(reset_state, "reset_state"),
    )


# --- flatten ------------------------------------------------------------------------------


def _ravel(tree: PyTree) -> jax.Array:
    """All floating leaves raveled and concatenated, in leaf order (dtypes promoted)."""
    leaves = [jnp.ravel(x) for x in jax.tree.leaves(tree) if is_trainable(x)]
    return jnp.concatenate(leaves) if leaves else jnp.zeros([0], jnp.float32)


def _unravel(flat: jax.Array, like: PyTree) -> PyTree:
    """Split ``flat`` into the shapes and dtypes of the floating leaves of ``like``."""
    leaves = [x for x in jax.tree.leaves(like) if is_trainable(x)]
    pieces = iter(jnp.split(flat, np.cumsum([x.size for x in leaves])[:-1]))

    def piece(x: jax.Array) -> jax.Array:
        p = next(pieces).reshape(x.shape)
        # A real leaf raveled with complex ones: its imaginary part is 0 by construction.
        p = p.real if jnp.iscomplexobj(p) and not jnp.iscomplexobj(x) else p
        return p.astype(x.dtype)

    return map_arrays(piece, like)


@pytree_dataclass
class Flatten(Transformation):
    r"""Run ``inner`` on one vector: all floating leaves raveled and concatenated.

    :math:`u = \operatorname{unravel}(T(\operatorname{ravel}(g)))`; fewer, larger kernels
    for trees of many small arrays. The state is the inner one, built for the vector.
    """

    inner: Any

    def init(self, params: PyTree) -> Any:
        check_params(params)
        return self.inner.init(_ravel(params))

    def update(self, updates, state, params=None, **extra_args):
        flat_params = None if params is None else _ravel(params)
        flat, state = self.inner.update(_ravel(updates), state, flat_params, **extra_args)
        return _unravel(flat, updates), state


def flatten(inner: Any) -> Flatten:
    """Apply ``inner`` to all parameters raveled into one vector (``optax.flatten``)."""
    return Flatten(as_transformation(inner, "inner"))


# --- inject_hyperparams -------------------------------------------------------------------


class InjectHyperparamsState(NamedTuple):
    """optax's record without schedule states, kept for code that names it.

    optax deprecated it in 0.1.9; ``inject_hyperparams`` returns an
    ``InjectStatefulHyperparamsState``, as optax's does.
    """

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    inner_state: Any


class InjectStatefulHyperparamsState(NamedTuple):
    """The step count, the hyperparameters used by the last update (change the numeric ones
    between steps), each schedule's state and the inner state (optax's fields)."""

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    hyperparams_states: dict[str, Any]
    inner_state: Any


@runtime_checkable
class StatefulSchedule(Protocol):
    """A schedule with a state of its own, as optax's ``StatefulSchedule``.

    ``init()`` returns the first state; ``schedule(state, **extra_args)`` the value for the
    coming update; ``update(state, **extra_args)`` the next state. ``extra_args`` are the
    keyword arguments given to the optimizer's ``update`` (a loss value, for example).
    """

    def init(self) -> Any: ...

    def update(self, state: Any, **extra_args: Any) -> Any: ...

    def __call__(self, state: Any, **extra_args: Any) -> Any: ...


class WrappedScheduleState(NamedTuple):
    """The step count a ``WrappedSchedule`` is evaluated at."""

    count: jax.Array


@pytree_dataclass
class WrappedSchedule(Transformation):
    r"""A function of the step count as a ``StatefulSchedule``: :math:`v_t = f(t)`, the state
    being :math:`t`, the number of updates made so far.

    ``schedule_fn`` is one of our schedules (its floats stay pytree leaves) or a plain
    function (optax's schedules included), which is held as static metadata.
    """

    schedule_fn: Any

    def __post_init__(self) -> None:
        # Runs on every unflatten too, where schedule_fn is an already wrapped subtree: only a
        # plain function, which unflatten never passes, is wrapped.
        fn = self.schedule_fn
        if callable(fn) and not is_pytree_schedule(fn):
            object.__setattr__(self, "schedule_fn", FunctionSchedule(fn, "schedule_fn"))

    def init(self) -> WrappedScheduleState:
        return WrappedScheduleState(count=zero_count())

    def update(self, state: WrappedScheduleState, **extra_args: Any) -> WrappedScheduleState:
        del extra_args
        return WrappedScheduleState(count=safe_increment(state.count))

    def __call__(self, state: WrappedScheduleState, **extra_args: Any) -> jax.Array:
        del extra_args
        return value_at(self.schedule_fn, state.count)


@dataclasses.dataclass(frozen=True, eq=False)
class _Held:
    """An object kept as static metadata, hashed and compared by identity whatever its own
    ``__eq__`` (so that an unhashable one can be metadata too)."""

    obj: Any


@pytree_dataclass
class _OpaqueStatefulSchedule(Transformation):
    """A stateful schedule that is not a pytree of arrays (optax's ``WrappedSchedule``, a plain
    class), held by identity as static metadata so that the optimizer stays a pytree of
    arrays; a new one recompiles a jitted step, as a new optax schedule does."""

    held: _Held = static()

    def init(self) -> Any:
        return self.held.obj.init()

    def update(self, state: Any, **extra_args: Any) -> Any:
        return self.held.obj.update(state, **extra_args)

    def __call__(self, state: Any, **extra_args: Any) -> Any:
        return self.held.obj(state, **extra_args)


def _as_schedule(value: Any, name: str) -> Any:
    """A stateful schedule as it is when it is a pytree of arrays (ours), else held
    (``_OpaqueStatefulSchedule``); a function of the count validated by ``hyper`` and wrapped
    in a ``WrappedSchedule``."""
    if isinstance(value, StatefulSchedule):
        leaves = jax.tree.leaves(value)
        if is_pytree_schedule(value) and all(is_array(leaf) for leaf in leaves):
            return value
        return _OpaqueStatefulSchedule(_Held(value))
    return WrappedSchedule(hyper(value, name))


def _hashable(value: Any) -> Any:
    """``value`` itself when hashable, else a pytree of hashable leaves as a ``StaticTree``."""
    try:
        hash(value)
        return value
    except TypeError:
        leaves, treedef = jax.tree.flatten(value)
        try:
            hash(tuple(leaves))
        except TypeError:
            raise TypeError(f"a static argument must be hashable, got {value!r}") from None
        return StaticTree(treedef, tuple(leaves))


@pytree_dataclass
class InjectHyperparams(Transformation):
    r"""``inner_factory(**hyperparams)`` rebuilt at every step from the state's hyperparameters.

    Numeric arguments are kept in ``state.hyperparams`` (change them between steps). A
    schedule :math:`s` with state :math:`\sigma_t` gives :math:`v_t = s(\sigma_t)` for update
    :math:`t` and then :math:`\sigma_{t+1} = s.\mathrm{update}(\sigma_t)`; a function of the
    count is the ``WrappedSchedule`` whose state is the count.
    """

    numeric: dict[str, Any]
    schedules: dict[str, Any]
    inner_factory: Any = static()
    static_kwargs: tuple[tuple[str, Any], ...] = static(())
    hyperparam_dtype: Any = static(None)

    def _cast(self, value: Any) -> jax.Array:
        array = jnp.asarray(value)
        if jnp.issubdtype(array.dtype, jnp.floating):
            return array.astype(self.hyperparam_dtype or jnp.float32)
        return array

    def inner(self, hyperparams: dict[str, Any]) -> Any:
        """The inner transformation with these hyperparameter values."""
        kwargs = {k: v.value() if isinstance(v, StaticTree) else v for k, v in self.static_kwargs}
        return as_transformation(
            self.inner_factory(**kwargs, **hyperparams), "the result of inner_factory"
        )

    def schedule_states(self) -> dict[str, Any]:
        """Each schedule's first state."""
        return {k: s.init() for k, s in self.schedules.items()}

    def _schedule_state(self, name: str, states: dict[str, Any], count: jax.Array) -> Any:
        """``states[name]``; for a schedule with no state there (one set by ``with_hyperparams``
        after ``init``) the state of the count, or its first state."""
        if name in states:
            return states[name]
        schedule = self.schedules[name]
        return (
            WrappedScheduleState(count)
            if isinstance(schedule, WrappedSchedule)
            else schedule.init()
        )

    def current(
        self,
        numeric: dict[str, Any],
        schedule_states: dict[str, Any],
        count: jax.Array,
        **extra_args: Any,
    ) -> dict[str, jax.Array]:
        """``numeric`` cast to the hyperparameter dtype, with the schedules evaluated at their
        states (``count``: the step count, for a schedule without one in ``schedule_states``)."""
        values = {k: self._cast(v) for k, v in numeric.items()}
        for name, schedule in self.schedules.items():
            state = self._schedule_state(name, schedule_states, count)
            values[name] = self._cast(schedule(state, **extra_args))
        return values

    def _untraceable(self, numeric: dict[str, jax.Array]) -> set[str]:
        """The numeric arguments that ``inner_factory`` cannot take as traced arrays.

        The state's hyperparameters are traced inside ``jit``; a factory that needs a Python
        number (our step counts and intervals are static, like shapes) raises then. Such
        arguments are kept static, as if named in ``static_args``. One abstract trace of the
        factory tells whether all can be traced; only if not, one per argument finds which.
        """
        values = self.current(numeric, self.schedule_states(), zero_count())

        def builds(names: Iterable[str]) -> bool:
            def build(traced: dict[str, jax.Array]) -> jax.Array:
                self.inner({**values, **traced})
                return jnp.zeros([])

            try:
                with warnings.catch_warnings():  # the concrete call warns, once
                    warnings.simplefilter("ignore")
                    jax.eval_shape(build, {k: values[k] for k in names})
            except Exception:  # any failure under tracing means "keep it static"
                return False
            return True

        if builds(numeric):
            return set()
        return {name for name in numeric if not builds([name])}

    def replaced(self, changes: dict[str, Any]) -> InjectHyperparams:
        """A copy with some hyperparameters (numbers or schedules) replaced, validated by
        calling the factory once."""
        numeric = {k: v for k, v in self.numeric.items() if k not in changes}
        schedules = {k: v for k, v in self.schedules.items() if k not in changes}
        for name, value in changes.items():
            if callable(value):
                schedules[name] = _as_schedule(value, name)
            else:
                numeric[name] = self._cast(hyper(value, name))
        new = dataclasses.replace(self, numeric=numeric, schedules=schedules)
        new.inner(new.current(numeric, new.schedule_states(), zero_count()))
        return new

    def init(self, params: PyTree) -> InjectStatefulHyperparamsState:
        count = zero_count()
        states = self.schedule_states()
        hyperparams = self.current(self.numeric, states, count)
        return InjectStatefulHyperparamsState(
            count, hyperparams, states, self.inner(hyperparams).init(params)
        )

    def update(self, updates, state, params=None, **extra_args):
        states = state.hyperparams_states
        hyperparams = self.current(state.hyperparams, states, state.count, **extra_args)
        new_states = dict(states)
        for name, schedule in self.schedules.items():
            if name in states:
                new_states[name] = schedule.update(states[name], **extra_args)
        updates, inner_state = self.inner(hyperparams).update(
            updates, state.inner_state, params, **extra_args
        )
        return updates, InjectStatefulHyperparamsState(
            safe_increment(state.count), hyperparams, new_states, inner_state
        )


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """Keep ``inner_factory``'s numeric arguments in the optimizer state (optax's name).

    ``inject_hyperparams(optim.adam)(learning_rate=1e-3)`` behaves as ``optim.adam(1e-3)``,
    with ``state.hyperparams["learning_rate"]`` changeable between steps. Any numeric argument
    may be given as a schedule instead: a function of the step count, or a
    ``StatefulSchedule`` (``init()``, ``update(state, **extra_args)``,
    ``__call__(state, **extra_args)``), whose state is kept in ``state.hyperparams_states``
    and which sees the extra keyword arguments of ``update`` (a loss value, say). Callables
    are schedules unless named in ``static_args``; booleans and non-numbers are passed as
    they are. Numeric arguments that the factory needs as Python numbers (our step counts
    and intervals, e.g. ``sophia``'s ``update_interval``) are found by tracing the factory
    once and kept static too, so no ``static_args`` is needed for them (optax keeps them in
    the state). Values are validated by calling the factory once.

    Our optimizers need no such wrapper for sweeps: their float hyperparameters are already
    pytree leaves, so ``jax.vmap`` over them, or re-creating them inside a jitted step,
    works directly; see also ``hyperparams`` and ``with_hyperparams``.

    Differences from optax: hyperparameters are float32 (``hyperparam_dtype`` when given)
    whatever the parameters' dtype, where optax uses the parameters' dtype (bf16 parameters
    would round ``b2=0.999`` to 1.0); arguments kept static by the tracing above are not in
    ``state.hyperparams``.

    Args:
      inner_factory: a function returning a gradient transformation (ours or optax's).
      static_args: names of arguments never to treat as hyperparameters (callables that are
        not schedules, for example).
      hyperparam_dtype: the dtype of float hyperparameters (default float32).

    Returns:
      A function with ``inner_factory``'s arguments returning the transformation.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> tx = optim.inject_hyperparams(optim.sgd)(learning_rate=optim.linear_schedule(1., 0., 4))
      >>> state = tx.init(jnp.zeros(2))
      >>> for _ in range(2):
      ...     updates, state = tx.update(jnp.ones(2), state)
      >>> schedule_state = state.hyperparams_states["learning_rate"]
      >>> float(state.hyperparams["learning_rate"]), int(schedule_state.count)
      (0.75, 2)
    """
    static_names = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    if not static_names <= set(signature.parameters):
        raise ValueError(
            f"static_args must name parameters of inner_factory; got {sorted(static_names)}, "
            f"parameters are {list(signature.parameters)}"
        )
    dtype = canonical_dtype(hyperparam_dtype, "hyperparam_dtype")

    @functools.wraps(inner_factory)
    def wrapped(*args: Any, **kwargs: Any) -> InjectHyperparams:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        numeric, schedules, static_kwargs = {}, {}, {}
        for name, value in bound.arguments.items():
            if name in static_names or isinstance(value, bool):
                static_kwargs[name] = value
            elif callable(value):
                schedules[name] = _as_schedule(value, name)
            elif isinstance(value, (int, float, jax.Array, np.ndarray, np.generic)):
                numeric[name] = value
            else:
                static_kwargs[name] = value

        def static(kwargs: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
            return tuple((k, _hashable(v)) for k, v in kwargs.items())

        tx = InjectHyperparams({}, schedules, inner_factory, static(static_kwargs), dtype)
        for name in tx._untraceable({k: tx._cast(v) for k, v in numeric.items()}):
            static_kwargs[name] = numeric.pop(name)
        tx = dataclasses.replace(
            tx,
            numeric={k: tx._cast(v) for k, v in numeric.items()},
            static_kwargs=static(static_kwargs),
        )
        tx.inner(tx.current(tx.numeric, tx.schedule_states(), zero_count()))  # validates
        return tx

    return wrapped


def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """``inject_hyperparams``, under optax's older name (deprecated there since 0.1.9).

    Warns with a ``DeprecationWarning``, as optax does, and returns
    ``inject_hyperparams(inner_factory, static_args, hyperparam_dtype)``.

    Args:
      inner_factory: a function returning a gradient transformation.
      static_args: names of arguments never to treat as hyperparameters.
      hyperparam_dtype: the dtype of float hyperparameters (default float32).

    Returns:
      What ``inject_hyperparams`` returns.

    Examples:
      >>> import warnings, optim
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     tx = optim.inject_stateful_hyperparams(optim.sgd)(learning_rate=0.1, momentum=0.9)
      >>> sorted(tx.init({}).hyperparams)
      ['learning_rate', 'momentum']
    """
    warnings.warn(
        "inject_stateful_hyperparams is deprecated, use inject_hyperparams instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
