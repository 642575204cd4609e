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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import check_flag, decay_hyper, hyper, value_at
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

__all__ = [
    "ApplyIfFiniteState",
    "InjectHyperparamsState",
    "LookaheadParams",
    "LookaheadState",
    "MaskedState",
    "MultiSteps",
    "MultiStepsState",
    "apply_if_finite",
    "flatten",
    "inject_hyperparams",
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


def _none_like(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda _: None, tree, is_leaf=lambda x: x is None)


def _cover(mask: PyTree, updates: PyTree) -> PyTree:
    """``mask``, made from ``updates``, with an entry at every leaf of the params: False where
    the update is ``None``.

    A mask function maps over the updates, where ``None`` (no gradient: a function or Python
    number of an equinox or flax module) is an empty subtree, so its mask has no entry there,
    while the params hold the function. Those leaves are hidden from ``inner`` (it gets no
    update for them either). The result has the structure of ``updates`` with ``None`` counted
    as a leaf, which ``check_same_structure`` has found equal to the params'.
    """

    def is_none(x: Any) -> bool:
        return x is None

    per_leaf = jax.tree.map(
        lambda m, sub: jax.tree.map(lambda _: m, sub, is_leaf=is_none), mask, updates
    )
    return jax.tree.map(lambda m: False if m is None else m, per_leaf, is_leaf=is_none)


@pytree_dataclass
class Masked(Transformation):
    r"""Apply ``inner`` to the leaves where the mask is True; pass the others through.

    :math:`u_t = T(g_t)` on selected leaves, :math:`u_t = g_t` elsewhere. Unselected leaves
    are hidden from ``inner`` as ``None``, so they get no state.
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
        return jax.tree.map(lambda m, sub: sub if m else _none_like(sub), mask, tree)

    def init(self, params: PyTree) -> MaskedState:
        return MaskedState(self.inner.init(self._hide(params, self._mask_tree(params))))

    def update(self, updates, state, params=None, **extra_args):
        mask = self._mask_tree(updates)
        if params is not None:
            check_same_structure(updates, params, "grads", "params")
        hidden_updates = self._hide(updates, mask, "grads")
        hidden_params = None if params is None else self._hide(params, _cover(mask, updates))
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
    """The step count, the numeric hyperparameters (change them between steps) and the
    inner state, as optax's ``InjectHyperparamsState``."""

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    inner_state: Any


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

    Numeric arguments are kept in ``state.hyperparams`` (change them between steps); arguments
    given as schedules are evaluated at the state's count, before it is incremented.
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

    def current(self, numeric: dict[str, Any], count: jax.Array) -> dict[str, jax.Array]:
        """``numeric`` cast to the hyperparameter dtype, with the schedules at ``count``."""
        values = {k: self._cast(v) for k, v in numeric.items()}
        values.update({k: self._cast(value_at(s, count)) for k, s in self.schedules.items()})
        return values

    def replaced(self, changes: dict[str, Any]) -> InjectHyperparams:
        """A copy with some hyperparameters (numbers or schedules) replaced, validated by
        calling the factory once."""
        numeric = {k: v for k, v in self.numeric.items() if k not in changes}
        schedules = {k: v for k, v in self.schedules.items() if k not in changes}
        for name, value in changes.items():
            checked = hyper(value, name)
            if callable(checked):
                schedules[name] = checked
            else:
                numeric[name] = self._cast(checked)
        new = dataclasses.replace(self, numeric=numeric, schedules=schedules)
        new.inner(new.current(numeric, zero_count()))
        return new

    def init(self, params: PyTree) -> InjectHyperparamsState:
        count = zero_count()
        hyperparams = self.current(self.numeric, count)
        return InjectHyperparamsState(count, hyperparams, self.inner(hyperparams).init(params))

    def update(self, updates, state, params=None, **extra_args):
        hyperparams = self.current(state.hyperparams, state.count)
        updates, inner_state = self.inner(hyperparams).update(
            updates, state.inner_state, params, **extra_args
        )
        return updates, InjectHyperparamsState(
            safe_increment(state.count), hyperparams, inner_state
        )


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """Keep ``inner_factory``'s numeric arguments in the optimizer state (optax parity).

    ``inject_hyperparams(optim.adam)(learning_rate=1e-3)`` behaves as ``optim.adam(1e-3)``,
    with ``state.hyperparams["learning_rate"]`` changeable between steps and any argument
    schedulable (callables are schedules unless named in ``static_args``; booleans and
    non-numbers are static). Values are validated by calling the factory once.

    Our optimizers need no such wrapper for sweeps: their float hyperparameters are already
    pytree leaves, so ``jax.vmap`` over them, or re-creating them inside a jitted step,
    works directly; see also ``hyperparams`` and ``with_hyperparams``.

    Differences from optax: hyperparameters are float32 (``hyperparam_dtype`` when given)
    whatever the parameters' dtype, where optax uses the parameters' dtype (bf16 parameters
    would round ``b2=0.999`` to 1.0); the state is optax's ``InjectHyperparamsState`` (no
    ``hyperparams_states``: our schedules are functions of the count).
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
        numeric, schedules, static_kwargs = {}, {}, []
        for name, value in bound.arguments.items():
            if name in static_names or isinstance(value, bool):
                static_kwargs.append((name, _hashable(value)))
            elif callable(value):
                schedules[name] = hyper(value, name)
            elif isinstance(value, (int, float, jax.Array, np.ndarray, np.generic)):
                numeric[name] = value
            else:
                static_kwargs.append((name, _hashable(value)))
        tx = InjectHyperparams({}, schedules, inner_factory, tuple(static_kwargs), dtype)
        tx = dataclasses.replace(tx, numeric={k: tx._cast(v) for k, v in numeric.items()})
        tx.inner(tx.current(numeric, zero_count()))  # validates every value
        return tx

    return wrapped
