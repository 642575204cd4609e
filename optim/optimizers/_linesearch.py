"""Line searches: a stepsize along the incoming direction from extra evaluations of the loss.

A line search is the last link of a chain (``lbfgs`` ends with one). Its ``update`` needs three
keyword arguments besides the updates, as in optax: ``value`` and ``grad``, the loss and its
gradient at ``params``, and ``value_fn``, the loss as a function of the parameters. Further
keyword arguments are passed on to ``value_fn`` (a batch, say); one it does not take is a
``TypeError``, as in optax, where every other transformation ignores extras it does not use
(the search would otherwise minimise another function than the caller meant). The state keeps
the loss and gradient at the accepted point, which ``value_and_grad_from_state`` returns at the
next step instead of computing them again. Each line search declares so with the class
attribute ``needs_value_fn = True``; ``optim.fit`` and ``optim.train.train_step`` find it through
chains and wrappers and pass the three arguments.

For complex parameters ``grad`` is the gradient in the usual sense, the conjugate of what
``jax.grad`` returns, as in optax's own tests; ``value_and_grad_from_state`` returns it so.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import flag, hyper_field, int_option, nonnegative, positive
from optim._keywords import suggest_keywords
from optim._numerics import cast_like_grads
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_params,
    check_same_structure,
    full_like,
    is_trainable,
    map_arrays,
    tree_vdot,
    upcast,
    zero_count,
)
from optim.base import Transformation, check_updates
from optim.grad import trainable_value_and_grad


def scalar_dtype(params: PyTree) -> Any:
    """The dtype of stepsizes, losses and inner products: float32, or wider for wide leaves."""
    dtypes = [jnp.finfo(upcast(p).dtype).dtype for p in jax.tree.leaves(params) if is_trainable(p)]
    return functools.reduce(jnp.promote_types, dtypes, jnp.dtype(jnp.float32))


def add_scaled(params: PyTree, step: jax.Array, direction: PyTree) -> PyTree:
    r""":math:`\theta + \eta d` on trainable leaves, kept in each parameter's dtype.

    Leaves that are not floating arrays, or whose direction is ``None``, are returned as
    they are, so ``value_fn`` sees the whole model.
    """
    leaves, treedef = jax.tree.flatten(params, is_leaf=lambda x: x is None)
    directions = treedef.flatten_up_to(direction)
    return treedef.unflatten(
        [
            (upcast(p) + step * upcast(d)).astype(p.dtype)
            if is_trainable(p) and d is not None
            else p
            for p, d in zip(leaves, directions, strict=True)
        ]
    )


def conjugate(tree: PyTree) -> PyTree:
    """The complex conjugate of complex leaves; real leaves as they are."""
    return map_arrays(lambda x: jnp.conj(x) if jnp.iscomplexobj(x) else x, tree)


def _value_and_grad(fn: Callable[[PyTree], Any]) -> Callable[[PyTree], tuple[Any, PyTree]]:
    """``jax.value_and_grad(fn)`` over trainable leaves, conjugated on complex ones."""
    raw = trainable_value_and_grad(fn)

    def value_and_grad(params: PyTree) -> tuple[Any, PyTree]:
        value, grad = raw(params)
        return value, conjugate(grad)

    return value_and_grad


def check_line_search_call(params: PyTree, value: Any, grad: PyTree, value_fn: Any) -> None:
    """The arguments every line search's ``update`` needs besides the updates and state."""
    if params is None:
        raise ValueError("a line search needs params: call update(grads, state, params, ...)")
    missing = [
        n for n, v in [("value", value), ("grad", grad), ("value_fn", value_fn)] if v is None
    ]
    if missing:
        raise TypeError(
            f"a line search's update needs the keyword arguments {missing}: the loss and "
            "its gradient at params, and the loss function, e.g. update(grads, state, "
            "params, value=loss, grad=grads, value_fn=loss_fn)"
        )
    if not callable(value_fn):
        raise TypeError(
            f"value_fn must be the loss function value_fn(params, ...) -> scalar, got "
            f"{type(value_fn).__name__} {value_fn!r}"
        )


def _value_fn_kwargs(value_fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The extra keyword arguments of ``update``, all passed on to ``value_fn`` (the batch,
    say). One that ``value_fn`` does not take is a ``TypeError``, as in optax: the search would
    otherwise minimise another function than the one the caller meant."""
    try:
        parameters = inspect.signature(value_fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: pass everything
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    unexpected = sorted(k for k in kwargs if k not in parameters)
    if unexpected:
        raise TypeError(
            f"Unexpected keyword arguments {unexpected} for the line search: update passes "
            f"its extra keyword arguments on to value_fn, which takes {list(parameters)}"
        )
    return kwargs


# --- zoom line search ---------------------------------------------------------------------

# What a verbose search prints when it fails, in optax's words (tools and tests look for them).
FLAG_INTERVAL_NOT_FOUND = (
    "No interval satisfying curvature condition. "
    "Consider increasing maximal possible stepsize of the linesearch."
)
FLAG_INTERVAL_TOO_SMALL = "Length of searched interval has been reduced below threshold."
FLAG_CURVATURE_COND_NOT_SATISFIED = (
    "Returning stepsize with sufficient decrease but curvature condition not satisfied."
)
FLAG_NO_STEPSIZE_FOUND = "Linesearch failed, no stepsize satisfying sufficient decrease found."
FLAG_NOT_A_DESCENT_DIRECTION = (
    "The linesearch failed because the provided direction is not a descent direction. "
)


class ZoomLinesearchInfo(NamedTuple):
    """How the last line search went: its iterations and the residual errors of the two
    Wolfe conditions at the chosen stepsize (0 when satisfied).

    Attributes:
      num_linesearch_steps: the number of loss evaluations of the last search, an int32 scalar.
      decrease_error: the residual of the sufficient decrease condition at the chosen stepsize
        (0 when met).
      curvature_error: the residual of the curvature condition at the chosen stepsize (0 when
        met).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array


class ScaleByZoomLinesearchState(NamedTuple):
    r"""The accepted stepsize, the loss and gradient there (optax's field names).

    Attributes:
      learning_rate: the accepted stepsize :math:`\\eta` (the next search's start under
        ``initial_guess_strategy="keep"``).
      value: the loss at the accepted point (``inf`` before the first step).
      grad: the gradient at the accepted point, a pytree like the params (which
        :func:`optim.value_and_grad_from_state` reuses).
      info: a :class:`optim.ZoomLinesearchInfo` on how the last search went.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: PyTree
    info: ZoomLinesearchInfo


class _Search(NamedTuple):
    """The loop carry of one line search (its structure is fixed, so it traces once)."""

    count: jax.Array
    stepsize: jax.Array  # the last point tried, with its value, gradient and slope
    value: jax.Array
    grad: PyTree
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    interval_found: jax.Array  # phase 2 (zoom) once an interval holding a good step is known
    done: jax.Array
    failed: jax.Array
    # The interval: value(high) >= value(low), whichever is the larger stepsize.
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array  # a third point for the cubic interpolant
    value_cubic_ref: jax.Array
    # The lowest point seen that satisfies sufficient decrease, the fallback.
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: PyTree


def _cubic_minimizer(a, fa, fpa, b, fb, c, fc):
    """The stationary point of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at
    a (NaN when it has none; the caller then discards it).

    With :math:`p(x) = A(x-a)^3 + B(x-a)^2 + f'_a (x-a) + f_a`, the two conditions at b and c
    are a 2x2 linear system in (A, B), solved by its explicit inverse (as scipy does). The
    product is one matrix-vector ``dot`` at the highest precision, so it rounds the same
    on every backend.
    """
    db, dc = b - a, c - a
    inverse_times_det = jnp.array([[dc**2, -(db**2)], [-(dc**3), db**3]])
    residuals = jnp.array([fb - fa - fpa * db, fc - fa - fpa * dc])
    det = (db * dc) ** 2 * (db - dc)
    cubic, quadratic = (
        jnp.dot(inverse_times_det, residuals, precision=jax.lax.Precision.HIGHEST) / det
    )
    radical = quadratic * quadratic - 3.0 * cubic * fpa
    return a + (-quadratic + jnp.sqrt(radical)) / (3.0 * cubic)


def _quadratic_minimizer(a, fa, fpa, b, fb):
    """The stationary point of the parabola through (a, fa), (b, fb) with slope fpa at a."""
    db = b - a
    curvature = (fb - fa - fpa * db) / db**2
    return a - fpa / (2.0 * curvature)


def _guess_strategy(value: Any, name: str) -> str:
    """``"one"`` or ``"keep"``: where each zoom line search starts."""
    if value not in ("one", "keep"):
        raise ValueError(f"{name} must be 'one' or 'keep', got {value!r}")
    return value


@pytree_dataclass
class ScaleByZoomLinesearch(Transformation):
    r"""Zoom line search for the strong Wolfe conditions (Nocedal & Wright, 2006, "Numerical
    Optimization", Algorithms 3.5 and 3.6), with Hager & Zhang's (2006, "Algorithm 851:
    CG_DESCENT") approximate sufficient decrease near a minimum.

    Along the incoming direction :math:`d` from :math:`\theta` it finds :math:`\eta` with

    .. math::
        f(\theta + \eta d) \le f(\theta) + c_1 \eta \langle \nabla f(\theta), d\rangle
        + \epsilon \quad\text{and}\quad
        |\langle \nabla f(\theta + \eta d), d\rangle| \le
        c_2 |\langle \nabla f(\theta), d\rangle| + \epsilon,

    (:math:`c_1` = ``slope_rtol``, :math:`c_2` = ``curv_rtol``, :math:`\epsilon` = ``tol``);
    when :math:`f(\theta + \eta d) \le f(\theta) + c_3|f(\theta)|` (:math:`c_3` =
    ``approx_dec_rtol``) the first condition may be met instead by
    :math:`\langle \nabla f(\theta + \eta d), d\rangle \le (2c_1 - 1)\langle \nabla
    f(\theta), d\rangle`. Phase 1 tries the initial guess and grows it by
    ``increase_factor`` until an interval holding such a step is known; phase 2 shrinks the
    interval with cubic, quadratic or bisection steps. After ``max_linesearch_steps``
    evaluations, or when the interval is narrower than ``stepsize_precision``, it returns
    the lowest point with sufficient decrease found (or the last point, if none). Output:
    :math:`u = \eta d`.

    Attributes:
      max_learning_rate: the largest stepsize tried (> 0); ``None``: no upper bound.
      tol: :math:`\epsilon >= 0`, the absolute tolerance added to both Wolfe conditions.
      increase_factor: the factor (> 0, may be ``inf``) by which phase 1 grows the stepsize
        until an interval holding an acceptable step is known.
      slope_rtol: :math:`c_1 \in [0, 1]`, the fraction of the first-order decrease required
        (sufficient decrease).
      curv_rtol: :math:`c_2 >= 0`, the curvature condition's factor; ``inf``: no curvature
        condition (a backtracking search with interpolation).
      approx_dec_rtol: :math:`c_3 >= 0`: near a minimum (within :math:`c_3|f(\theta)|`) Hager &
        Zhang's approximate sufficient decrease is accepted too; ``None``: the classical
        condition only.
      stepsize_precision: the search stops when the interval is narrower than this (>= 0).
      max_linesearch_steps: the most loss evaluations in one search (a static int >= 1).
      initial_guess_strategy: ``"one"`` (start each search at 1, best for quasi-Newton
        directions) or ``"keep"`` (at the previous stepsize); anything else raises
        ``ValueError``.
      verbose: print (``jax.debug.print``, under jit too) why the chosen stepsize misses a
        Wolfe condition, in optax's words.

    The fields are the arguments of :func:`optim.scale_by_zoom_linesearch`, which builds it.
    """

    needs_value_fn: ClassVar[bool] = True  # update needs value=, grad=, value_fn= (fit reads it)
    max_learning_rate: Any = positive(optional=True)
    tol: Any = nonnegative()
    increase_factor: Any = positive(allow_inf=True)
    slope_rtol: Any = hyper_field(low=0.0, high=1.0)
    curv_rtol: Any = nonnegative(allow_inf=True)
    approx_dec_rtol: Any = nonnegative(optional=True)
    stepsize_precision: Any = nonnegative()
    max_linesearch_steps: int = int_option(low=1)
    initial_guess_strategy: str = static("keep", check=_guess_strategy)
    verbose: bool = flag(False)

    def init(self, params: PyTree) -> ScaleByZoomLinesearchState:
        check_params(params)
        dtype = scalar_dtype(params)
        inf = jnp.full([], jnp.inf, dtype)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones([], dtype),
            value=inf,
            grad=full_like(params, 0.0),
            info=ZoomLinesearchInfo(zero_count(), inf, inf),
        )

    def update(
        self,
        updates,
        state,
        params=None,
        *,
        value: Any = None,
        grad: Any = None,
        value_fn: Callable[..., Any] | None = None,
        **extra_args,
    ):
        check_line_search_call(params, value, grad, value_fn)
        check_updates(updates, state.grad)
        check_same_structure(grad, state.grad, "grad", "the optimizer state")
        value_and_grad = _value_and_grad(
            functools.partial(value_fn, **_value_fn_kwargs(value_fn, extra_args))
        )
        # The state's value has the dtype init chose; a learning rate set by hand (e.g.
        # optim.tree.set(state, learning_rate=0.5), as optax allows) may be a Python float.
        dtype = jnp.asarray(state.value).dtype
        learning_rate = jnp.asarray(state.learning_rate, dtype)
        grad = _store(grad, state.grad)
        final = self._search(value_and_grad, params, updates, value, grad, learning_rate)
        if self.verbose:
            self._report(final, jnp.real(tree_vdot(updates, grad)))
        stepsize = final.stepsize
        new_state = ScaleByZoomLinesearchState(
            learning_rate=stepsize,
            value=final.value.astype(dtype),
            grad=_store(final.grad, state.grad),
            info=ZoomLinesearchInfo(final.count, final.decrease_error, final.curvature_error),
        )
        out = map_arrays(lambda u: stepsize * upcast(u), updates)
        return cast_like_grads(out, updates), new_state

    # -- the two Wolfe conditions, as errors that are 0 when satisfied --------------------

    def _decrease_error(self, stepsize, value, slope, value_init, slope_init):
        error = value - value_init - self.slope_rtol * stepsize * slope_init
        if self.approx_dec_rtol is not None:
            approx = jnp.maximum(
                slope - (2 * self.slope_rtol - 1.0) * slope_init,
                value - value_init - self.approx_dec_rtol * jnp.abs(value_init),
            )
            error = jnp.minimum(approx, error)
        return _nan_to_inf(jnp.maximum(error, 0.0))

    def _curvature_error(self, slope, slope_init):
        return _nan_to_inf(jnp.maximum(jnp.abs(slope) - self.curv_rtol * jnp.abs(slope_init), 0))

    # -- the search ---------------------------------------------------------------------

    def _search(self, value_and_grad, params, direction, value, grad, previous_stepsize):
        dtype = previous_stepsize.dtype
        zero = jnp.zeros([], dtype)
        value = jnp.asarray(value, dtype)
        slope_init = jnp.real(tree_vdot(direction, grad)).astype(dtype)
        guess = jnp.ones([], dtype) if self.initial_guess_strategy == "one" else previous_stepsize
        inf = jnp.full([], jnp.inf, dtype)
        false = jnp.zeros([], bool)
        start = _Search(
            count=zero_count(),
            stepsize=zero,
            value=value,
            grad=grad,
            slope=slope_init,
            decrease_error=inf,
            curvature_error=inf,
            interval_found=false,
            done=false,
            failed=false,
            low=zero,
            value_low=value,
            slope_low=slope_init,
            high=zero,
            value_high=value,
            slope_high=slope_init,
            cubic_ref=zero,
            value_cubic_ref=value,
            safe_stepsize=zero,
            safe_value=value,
            safe_grad=grad,
        )

        def measure(stepsize):
            """The loss, gradient and slope at ``stepsize``, and the two Wolfe errors."""
            new_value, new_grad = value_and_grad(add_scaled(params, stepsize, direction))
            new_value = jnp.asarray(new_value, dtype)
            new_grad = _store(new_grad, grad)
            new_slope = jnp.real(tree_vdot(new_grad, direction)).astype(dtype)
            errors = (
                self._decrease_error(stepsize, new_value, new_slope, value, slope_init),
                self._curvature_error(new_slope, slope_init),
            )
            return (stepsize, new_value, new_grad, new_slope), errors

        def step(s: _Search) -> _Search:
            search_stepsize = jnp.where(s.count == 0, guess, self.increase_factor * s.stepsize)
            if self.max_learning_rate is not None:
                at_max = search_stepsize >= self.max_learning_rate
                search_stepsize = jnp.minimum(search_stepsize, self.max_learning_rate)
            else:
                at_max = false
            # Each phase measures its own point inside its branch (one evaluation runs either
            # way). Measuring before the branch would change XLA's fusions and with them the
            # rounding (XLA contracts a*b+c into FMAs within a fusion); as written, the
            # trajectories are optax's bit for bit on CPU.
            s = jax.lax.cond(
                s.interval_found,
                lambda: self._zoom(s, *measure(_zoom_point(s))),
                lambda: self._grow(s, *measure(search_stepsize), at_max),
            )
            return _take_safe_point(s)

        return jax.lax.while_loop(lambda s: ~(s.done | s.failed), step, start)

    def _grow(self, s: _Search, point, errors, at_max) -> _Search:
        """Phase 1 (Algorithm 3.5): a larger stepsize until an interval is bracketed."""
        stepsize, value, grad, slope = point
        decrease_error, curvature_error = errors
        good = jnp.maximum(decrease_error, curvature_error) <= self.tol
        safe = decrease_error <= self.tol
        safe_stepsize, safe_value, safe_grad = _select(
            safe, (stepsize, value, grad), (s.safe_stepsize, s.safe_value, s.safe_grad)
        )
        # Too far (no decrease, or worse than the previous point): the minimum lies before.
        high_is_new = (decrease_error > 0.0) | ((value >= s.value) & (s.count > 0))
        # Uphill already: the minimum lies between the previous point and this one.
        low_is_new = (slope >= 0.0) & ~high_is_new
        previous = (s.stepsize, s.value, s.slope)
        new = (stepsize, value, slope)
        low, high = _select(low_is_new, (new, previous), (previous, new))
        interval_found = high_is_new | low_is_new | good
        # At the largest stepsize allowed with no interval: take it (curvature unmet).
        done = good | (at_max & ~interval_found)
        return _Search(
            count=s.count + 1,
            stepsize=stepsize,
            value=value,
            grad=grad,
            slope=slope,
            decrease_error=decrease_error,
            curvature_error=curvature_error,
            interval_found=interval_found,
            done=done,
            failed=(s.count + 1 >= self.max_linesearch_steps) & ~done,
            low=low[0],
            value_low=low[1],
            slope_low=low[2],
            high=high[0],
            value_high=high[1],
            slope_high=high[2],
            cubic_ref=low[0],
            value_cubic_ref=low[1],
            safe_stepsize=safe_stepsize,
            safe_value=safe_value,
            safe_grad=safe_grad,
        )

    def _zoom(self, s: _Search, point, errors) -> _Search:
        """Phase 2 (Algorithm 3.6): shrink the interval around the point just tried."""
        stepsize, value, grad, slope = point
        decrease_error, curvature_error = errors
        done = jnp.maximum(decrease_error, curvature_error) <= self.tol
        better_safe = (decrease_error <= self.tol) & (value < s.safe_value)
        safe_stepsize, safe_value, safe_grad = _select(
            better_safe, (stepsize, value, grad), (s.safe_stepsize, s.safe_value, s.safe_grad)
        )
        high_is_new = (decrease_error > 0.0) | (value >= s.value_low)
        # The new point becomes low; if the slope there points back past low, old low is high.
        high_is_low = (slope * (s.high - s.low) >= 0.0) & ~high_is_new
        old_low = (s.low, s.value_low, s.slope_low)
        old_high = (s.high, s.value_high, s.slope_high)
        new = (stepsize, value, slope)
        high = _select(high_is_low, old_low, _select(high_is_new, new, old_high))
        low = _select(high_is_new, old_low, new)
        cubic_ref, value_cubic_ref = _select(high_is_new | high_is_low, old_high[:2], old_low[:2])
        narrow = jnp.abs(s.high - s.low) <= self.stepsize_precision
        give_up = (s.count + 1 >= self.max_linesearch_steps) | (narrow & (safe_stepsize > 0.0))
        return _Search(
            count=s.count + 1,
            stepsize=stepsize,
            value=value,
            grad=grad,
            slope=slope,
            decrease_error=decrease_error,
            curvature_error=curvature_error,
            interval_found=s.interval_found,
            done=done,
            failed=give_up & ~done,
            low=low[0],
            value_low=low[1],
            slope_low=low[2],
            high=high[0],
            value_high=high[1],
            slope_high=high[2],
            cubic_ref=cubic_ref,
            value_cubic_ref=value_cubic_ref,
            safe_stepsize=safe_stepsize,
            safe_value=safe_value,
            safe_grad=safe_grad,
        )

    def _report(self, final: _Search, slope_init: jax.Array) -> None:
        """Print why the chosen stepsize misses a Wolfe condition (``verbose=True``), in
        optax's words (``FLAG_*``, which tools grep for) and with the numbers."""
        at_max = (
            jnp.asarray(False)
            if self.max_learning_rate is None
            else final.stepsize >= self.max_learning_rate
        )
        no_interval = at_max & ~final.interval_found
        narrow = jnp.abs(final.high - final.low) <= self.stepsize_precision
        kept_safe = final.safe_stepsize > 0
        missed = (final.decrease_error > 0) | (final.curvature_error > 0)
        _print_if(
            missed,
            "scale_by_zoom_linesearch: after {n} evaluations, stepsize {step} has decrease "
            "error {dec} and curvature error {curv} (0 = condition met).",
            n=final.count,
            step=final.stepsize,
            dec=final.decrease_error,
            curv=final.curvature_error,
        )
        _print_if(no_interval, FLAG_INTERVAL_NOT_FOUND + "\n" + FLAG_CURVATURE_COND_NOT_SATISFIED)
        failed = missed & ~no_interval
        _print_if(failed & narrow, FLAG_INTERVAL_TOO_SMALL)
        _print_if(
            failed & kept_safe,
            FLAG_CURVATURE_COND_NOT_SATISFIED + " Stepsize ensuring sufficient decrease: {s}.",
            s=final.safe_stepsize,
        )
        _print_if(failed & ~kept_safe, FLAG_NO_STEPSIZE_FOUND)
        _print_if(
            failed & ~kept_safe & (slope_init >= 0),
            FLAG_NOT_A_DESCENT_DIRECTION + "The slope (={slope}) at stepsize=0 should be negative.",
            slope=slope_init,
        )
        _print_if(
            failed & ~kept_safe & (slope_init < 0),
            "Consider a larger max_linesearch_steps.",
        )


def _print_if(condition: jax.Array, message: str, **values: Any) -> None:
    """``jax.debug.print(message)`` when ``condition`` holds (ordered, inside jit too)."""
    jax.lax.cond(condition, lambda: jax.debug.print(message, **values, ordered=True), lambda: None)


def _zoom_point(s: _Search) -> jax.Array:
    """The next stepsize to try inside the interval: the cubic interpolant's minimizer when
    it lies well inside, else the quadratic's, else the midpoint."""
    delta = jnp.abs(s.high - s.low)
    left, right = jnp.minimum(s.high, s.low), jnp.maximum(s.high, s.low)
    cubic = _cubic_minimizer(
        s.low, s.value_low, s.slope_low, s.high, s.value_high, s.cubic_ref, s.value_cubic_ref
    )
    quadratic = _quadratic_minimizer(s.low, s.value_low, s.slope_low, s.high, s.value_high)
    use_cubic = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
    use_quadratic = (
        ~use_cubic & (quadratic > left + 0.1 * delta) & (quadratic < right - 0.1 * delta)
    )
    return jnp.where(use_cubic, cubic, jnp.where(use_quadratic, quadratic, (s.low + s.high) / 2.0))


def _take_safe_point(s: _Search) -> _Search:
    """On failure, fall back to the best point with sufficient decrease, if any; with none,
    to the last point, unless the loss was infinite or NaN there (then to stepsize 0)."""
    use_safe = s.failed & ((s.safe_stepsize > 0.0) | jnp.isinf(s.decrease_error))
    stepsize, value, grad = _select(
        use_safe, (s.safe_stepsize, s.safe_value, s.safe_grad), (s.stepsize, s.value, s.grad)
    )
    return s._replace(stepsize=stepsize, value=value, grad=grad)


def _select(condition: jax.Array, if_true: Any, if_false: Any) -> Any:
    return jax.tree.map(functools.partial(jnp.where, condition), if_true, if_false)


def _nan_to_inf(x: jax.Array) -> jax.Array:
    return jnp.where(jnp.isnan(x), jnp.inf, x)


def _store(grad: PyTree, reference: PyTree) -> PyTree:
    return map_arrays(lambda g, r: g.astype(r.dtype), grad, reference)


@suggest_keywords
def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: Any = None,
    tol: Any = 0.0,
    increase_factor: Any = 2.0,
    slope_rtol: Any = 1e-4,
    curv_rtol: Any = 0.9,
    approx_dec_rtol: Any = 1e-6,
    stepsize_precision: Any = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> ScaleByZoomLinesearch:
    r"""Scale the direction by a stepsize meeting the strong Wolfe conditions
    (``optax.scale_by_zoom_linesearch``).

    Along the incoming direction :math:`d` from :math:`\theta` it finds :math:`\eta` with

    .. math::
        f(\theta + \eta d) \le f(\theta) + c_1 \eta \langle \nabla f(\theta), d\rangle
        + \epsilon \quad\text{and}\quad
        |\langle \nabla f(\theta + \eta d), d\rangle| \le
        c_2 |\langle \nabla f(\theta), d\rangle| + \epsilon

    (Nocedal & Wright, 2006, Algorithms 3.5 and 3.6), and outputs :math:`u = \eta d`. It is the
    last link of a chain whose earlier links give a descent direction. Its ``update`` takes the
    keyword arguments ``value`` and ``grad`` (the loss and its gradient at ``params``) and
    ``value_fn`` (the loss function); further keyword arguments that ``value_fn`` accepts are
    passed on to it.

    Args:
      max_linesearch_steps: the most loss evaluations in one search (a static int >= 1).
      max_learning_rate: the largest stepsize tried (> 0); ``None``: no upper bound.
      tol: :math:`\epsilon >= 0`, the absolute tolerance added to both Wolfe conditions.
      increase_factor: the factor (> 0, may be ``inf``) by which phase 1 grows the stepsize
        until an interval holding an acceptable step is known.
      slope_rtol: :math:`c_1 \in [0, 1]`, the fraction of the first-order decrease required
        (sufficient decrease).
      curv_rtol: :math:`c_2 >= 0`, the curvature condition's factor; ``inf``: no curvature
        condition (a backtracking search with interpolation).
      approx_dec_rtol: :math:`c_3 >= 0`: near a minimum (within :math:`c_3|f(\theta)|`) Hager &
        Zhang's approximate sufficient decrease is accepted too; ``None``: the classical
        condition only.
      stepsize_precision: the search stops when the interval is narrower than this (>= 0).
      initial_guess_strategy: ``"one"`` (start each search at 1, best for quasi-Newton
        directions) or ``"keep"`` (at the previous stepsize); anything else raises
        ``ValueError``.
      verbose: print (``jax.debug.print``, under jit too) why the chosen stepsize misses a
        Wolfe condition, in optax's words.

    Returns:
      An :class:`optim.GradientTransformation` whose state is a
      :class:`optim.ScaleByZoomLinesearchState`.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> def fn(params):
      ...     return jnp.sum(params**2)
      >>> solver = optim.chain(optim.sgd(learning_rate=1.0), optim.scale_by_zoom_linesearch(15))
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> state = solver.init(params)
      >>> value_and_grad = optim.value_and_grad_from_state(fn)
      >>> value, grad = value_and_grad(params, state=state)
      >>> updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=fn)
      >>> print(optim.apply_updates(params, updates))
      [0. 0. 0.]

    References:
      Nocedal & Wright, 2006, "Numerical Optimization", Algorithms 3.5-3.6;
      Hager & Zhang, 2006, https://doi.org/10.1145/1132973.1132979
    """
    return ScaleByZoomLinesearch(
        max_learning_rate=max_learning_rate,
        tol=tol,
        increase_factor=increase_factor,
        slope_rtol=slope_rtol,
        curv_rtol=curv_rtol,
        approx_dec_rtol=approx_dec_rtol,
        stepsize_precision=stepsize_precision,
        max_linesearch_steps=max_linesearch_steps,
        initial_guess_strategy=initial_guess_strategy,
        verbose=verbose,
    )


class BacktrackingLinesearchInfo(NamedTuple):
    """How the last line search went: its number of evaluations and the error of the
    sufficient decrease condition at the chosen stepsize (0: met; positive: no stepsize tried
    met it).

    Attributes:
      num_linesearch_steps: the number of loss evaluations of the last search, an int32
        scalar.
      decrease_error: the residual of the sufficient decrease condition at the chosen
        stepsize (0 when met).
    """

    num_linesearch_steps: jax.Array
    decrease_error: jax.Array


class ScaleByBacktrackingLinesearchState(NamedTuple):
    """The accepted stepsize, the loss there and (with ``store_grad=True``, else None) the
    gradient there, which ``value_and_grad_from_state`` reuses (optax's field names).

    Attributes:
      learning_rate: the accepted stepsize.
      value: the loss at the accepted point (``inf`` before the first step).
      grad: the gradient at the accepted point with ``store_grad=True`` (which
        :func:`optim.value_and_grad_from_state` reuses), else ``None``.
      info: how the last search went: its number of evaluations and the error of the
        sufficient decrease condition at the chosen stepsize.
    """

    learning_rate: jax.Array
    value: jax.Array
    grad: PyTree
    info: BacktrackingLinesearchInfo


class _Backtrack(NamedTuple):
    """The loop carry of one backtracking search."""

    learning_rate: jax.Array
    value: jax.Array
    decrease_error: jax.Array
    count: jax.Array


@pytree_dataclass
class ScaleByBacktrackingLinesearch(Transformation):
    r"""Backtracking line search for sufficient decrease (the Armijo condition; Nocedal &
    Wright, 2006, "Numerical Optimization", Algorithm 3.1; Vaswani et al., 2019, "Painless
    Stochastic Gradient").

    Along the incoming direction :math:`u` from :math:`\theta` it accepts the first stepsize
    :math:`\eta` of :math:`\eta_0, \beta\eta_0, \beta^2\eta_0, \dots` (:math:`\beta` =
    ``decrease_factor``) with

    .. math::
        f(\theta + \eta u) \le (1 + \delta) f(\theta) + c\,\eta \langle \nabla f(\theta), u
        \rangle + \epsilon

    (:math:`c` = ``slope_rtol``, :math:`\delta` = ``rtol``, :math:`\epsilon` = ``atol``),
    trying at most ``max_backtracking_steps + 1`` stepsizes; the guess is :math:`\eta_0 =
    \min(\gamma \eta_{prev}, \eta_{max})` (:math:`\gamma` = ``increase_factor``). Output:
    :math:`u' = \eta u`, with :math:`\eta = 0` when the loss was infinite or NaN at every
    stepsize tried. :math:`u` must be a descent direction, :math:`\langle \nabla f(\theta),
    u\rangle < 0` (the output of ``sgd`` without momentum is one).

    Attributes:
      slope_rtol: :math:`c`, the fraction of the first-order decrease required.
      decrease_factor: :math:`\beta` in (0, 1], the factor of each decrease.
      increase_factor: :math:`\gamma` > 0, the factor from the previous stepsize to the next
        guess; 1 keeps it, ``math.inf`` starts every search at ``max_learning_rate``.
      max_learning_rate: the largest stepsize (> 0), also the first guess after a failed
        search.
      atol: :math:`\epsilon`, the absolute tolerance of the condition.
      rtol: :math:`\delta`, its tolerance relative to the loss.
      max_backtracking_steps: the most times the stepsize is decreased in one search (a
        static int >= 0; the loss is evaluated at most one time more).
      store_grad: keep the gradient at the accepted point in the state, for
        ``value_and_grad_from_state`` to reuse (one gradient evaluation per step more).
      verbose: print the reason when a search fails.

    The fields are the arguments of :func:`optim.scale_by_backtracking_linesearch`, which builds it.
    """

    needs_value_fn: ClassVar[bool] = True  # update needs value=, grad=, value_fn= (fit reads it)
    slope_rtol: Any = hyper_field(low=0.0, high=1.0)
    decrease_factor: Any = hyper_field(low=0.0, high=1.0, low_open=True)
    increase_factor: Any = positive(allow_inf=True)
    max_learning_rate: Any = positive()
    atol: Any = nonnegative()
    rtol: Any = nonnegative()
    max_backtracking_steps: int = int_option(low=0)
    store_grad: bool = flag(False)
    verbose: bool = flag(False)

    def init(self, params: PyTree) -> ScaleByBacktrackingLinesearchState:
        check_params(params)
        dtype = scalar_dtype(params)
        inf = jnp.full([], jnp.inf, dtype)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.ones([], dtype),
            value=inf,
            grad=full_like(params, 0.0) if self.store_grad else None,
            info=BacktrackingLinesearchInfo(num_linesearch_steps=zero_count(), decrease_error=inf),
        )

    def update(
        self,
        updates,
        state,
        params=None,
        *,
        value: Any = None,
        grad: Any = None,
        value_fn: Callable[..., Any] | None = None,
        **extra_args,
    ):
        check_line_search_call(params, value, grad, value_fn)
        check_updates(updates, params, "params")
        check_same_structure(grad, params, "grad", "params")
        loss = functools.partial(value_fn, **_value_fn_kwargs(value_fn, extra_args))
        dtype = state.learning_rate.dtype
        value = jnp.asarray(value, dtype)
        # The derivative of eta -> f(theta + eta u) at 0 (grad in the usual sense for complex
        # leaves; see the module docstring).
        slope = jnp.real(tree_vdot(grad, updates)).astype(dtype)

        def decrease_error(learning_rate: jax.Array, new_value: jax.Array) -> jax.Array:
            error = new_value - (1.0 + self.rtol) * value - learning_rate * self.slope_rtol * slope
            return jnp.maximum(_nan_to_inf(error), 0.0)

        def keep_searching(s: _Backtrack) -> jax.Array:
            return ~(s.decrease_error <= self.atol) & (s.count <= self.max_backtracking_steps)

        def backtrack(s: _Backtrack) -> _Backtrack:
            # The guess first, then smaller and smaller stepsizes.
            learning_rate = jnp.where(
                s.count > 0, self.decrease_factor * s.learning_rate, s.learning_rate
            )
            new_value = jnp.asarray(loss(add_scaled(params, learning_rate, updates)), dtype)
            error = decrease_error(learning_rate, new_value).astype(dtype)
            return _Backtrack(learning_rate, new_value, error, s.count + 1)

        # After a search that found nothing (stepsize 0), start again from the largest one:
        # growing 0 would give 0 for ever.
        previous = state.learning_rate
        guess = jnp.where(
            previous > 0,
            jnp.minimum(self.increase_factor * previous, self.max_learning_rate),
            self.max_learning_rate,
        ).astype(dtype)
        inf = jnp.full([], jnp.inf, dtype)
        final = jax.lax.while_loop(
            keep_searching, backtrack, _Backtrack(guess, value, inf, zero_count())
        )
        if self.verbose:
            _report_backtracking(final, value, slope, self.atol)
        # A loss infinite or NaN at every stepsize tried: no step at all.
        learning_rate = jnp.where(jnp.isinf(final.decrease_error), 0.0, final.learning_rate)
        new_grad = None
        if self.store_grad:
            # The gradient at the last point tried, for the next step to reuse.
            _, new_grad = _value_and_grad(loss)(add_scaled(params, final.learning_rate, updates))
            new_grad = _store(new_grad, state.grad)
        new_state = ScaleByBacktrackingLinesearchState(
            learning_rate=learning_rate.astype(dtype),
            value=final.value,
            grad=new_grad,
            info=BacktrackingLinesearchInfo(final.count, final.decrease_error),
        )
        out = map_arrays(lambda u: learning_rate * upcast(u), updates)
        return cast_like_grads(out, updates), new_state


def _report_backtracking(final: _Backtrack, value: Any, slope: Any, atol: Any) -> None:
    """Print why the search failed (``verbose=True``)."""
    jax.lax.cond(
        final.decrease_error > atol,
        lambda: jax.debug.print(
            "scale_by_backtracking_linesearch: no stepsize met the sufficient decrease "
            "condition after {n} evaluations: loss {value} at params, slope {slope} along the "
            "direction (it must be negative), last stepsize {step} with decrease error {error}",
            n=final.count,
            value=value,
            slope=slope,
            step=final.learning_rate,
            error=final.decrease_error,
            ordered=True,
        ),
        lambda: None,
    )
    jax.lax.cond(
        jnp.isinf(final.decrease_error),
        lambda: jax.debug.print(
            "scale_by_backtracking_linesearch: the loss was infinite or NaN at every stepsize "
            "tried; taking stepsize 0",
            ordered=True,
        ),
        lambda: None,
    )


@suggest_keywords
def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: Any = 1e-4,
    decrease_factor: Any = 0.8,
    increase_factor: Any = 1.5,
    max_learning_rate: Any = 1.0,
    atol: Any = 0.0,
    rtol: Any = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> ScaleByBacktrackingLinesearch:
    r"""Scale the direction by a stepsize that decreases the loss enough (the Armijo
    condition), found by backtracking (``optax.scale_by_backtracking_linesearch``; see
    ``ScaleByBacktrackingLinesearch``).

    The last link of a chain whose earlier links give a descent direction, e.g.
    ``chain(sgd(1.0), scale_by_backtracking_linesearch(15))``. Its ``update`` takes the
    keyword arguments ``value`` and ``grad`` (the loss and its gradient at ``params``) and
    ``value_fn`` (the loss function); further keyword arguments that ``value_fn`` accepts
    (a batch, say) are passed on to it; one it does not take is a ``TypeError``, as in optax.

    Args:
      max_backtracking_steps: the most times the stepsize is decreased in one search (a
        static int >= 0; the loss is evaluated at most one time more).
      slope_rtol: :math:`c`, the fraction of the first-order decrease required.
      decrease_factor: :math:`\beta` in (0, 1], the factor of each decrease.
      increase_factor: :math:`\gamma` > 0, the factor from the previous stepsize to the next
        guess; 1 keeps it, ``math.inf`` starts every search at ``max_learning_rate``.
      max_learning_rate: the largest stepsize (> 0), also the first guess after a failed
        search.
      atol: :math:`\epsilon`, the absolute tolerance of the condition.
      rtol: :math:`\delta`, its tolerance relative to the loss.
      store_grad: keep the gradient at the accepted point in the state, for
        ``value_and_grad_from_state`` to reuse (one gradient evaluation per step more).
      verbose: print the reason when a search fails.

    Returns:
      An :class:`optim.GradientTransformation` whose state is a
      :class:`optim.ScaleByBacktrackingLinesearchState`.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> import optim
      >>> def fn(params):
      ...     return jnp.sum(params**2)
      >>> solver = optim.chain(
      ...     optim.sgd(learning_rate=1.0),
      ...     optim.scale_by_backtracking_linesearch(max_backtracking_steps=15, store_grad=True),
      ... )
      >>> params = jnp.array([1.0, 2.0, 3.0])
      >>> state = solver.init(params)
      >>> value_and_grad = optim.value_and_grad_from_state(fn)
      >>> for _ in range(3):
      ...     value, grad = value_and_grad(params, state=state)
      ...     updates, state = solver.update(
      ...         grad, state, params, value=value, grad=grad, value_fn=fn
      ...     )
      ...     params = optim.apply_updates(params, updates)
      ...     print(f"{fn(params):.2E}")
      5.04E+00
      1.81E+00
      6.53E-01
    """
    return ScaleByBacktrackingLinesearch(
        slope_rtol=slope_rtol,
        decrease_factor=decrease_factor,
        increase_factor=increase_factor,
        max_learning_rate=max_learning_rate,
        atol=atol,
        rtol=rtol,
        max_backtracking_steps=max_backtracking_steps,
        store_grad=store_grad,
        verbose=verbose,
    )


class _AmbiguousRecord(KeyError, ValueError):
    """Several line-search records in one state (a KeyError as in optax, and a ValueError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@suggest_keywords
def value_and_grad_from_state(value_fn: Callable[..., Any]) -> Callable[..., tuple[Any, PyTree]]:
    """``jax.value_and_grad(value_fn)`` that reuses the loss and gradient a line search left
    in the optimizer state (``optax.value_and_grad_from_state``).

    The returned function is called as ``(params, *args, state=opt_state, **kwargs)``. It
    takes ``value`` and ``grad`` from the one record in ``state`` that has both fields;
    where that value is infinite or NaN (before the first step) it evaluates ``value_fn``
    instead. Gradients are conjugated on complex leaves (see the module docstring).

    Args:
      value_fn: the loss function ``value_fn(params, *args, **kwargs) -> scalar``; not a
        callable: ``TypeError``.

    Returns:
      A function ``(params, *args, state, **kwargs) -> (value, grad)``. It raises
      ``ValueError`` when ``state`` holds no such record or one without a gradient
      (``store_grad=False``), and a ``KeyError`` (also a ``ValueError``) when it holds several.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> def fn(params):
      ...     return jnp.sum(params**2)
      >>> solver = optim.lbfgs()
      >>> params = jnp.array([1.0, 2.0])
      >>> state = solver.init(params)
      >>> value_and_grad = optim.value_and_grad_from_state(fn)
      >>> value, grad = value_and_grad(params, state=state)  # computed: no step taken yet
      >>> print(value, grad)
      5.0 [2. 4.]
      >>> updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=fn)
      >>> params = optim.apply_updates(params, updates)
      >>> value, grad = value_and_grad(params, state=state)  # read from the state
      >>> print(round(float(value), 4))
      1.5279
    """
    if not callable(value_fn):
        raise TypeError(
            f"value_fn must be the loss function value_fn(params, ...) -> scalar, got "
            f"{type(value_fn).__name__} {value_fn!r}"
        )

    def value_and_grad(params: PyTree, *args: Any, state: Any, **kwargs: Any):
        records = [r for r in jax.tree.leaves(state, is_leaf=_is_record) if _is_record(r)]
        if len(records) != 1:
            # Several records: optax's KeyError (an ambiguous lookup by name); none: ValueError.
            error = ValueError if not records else _AmbiguousRecord
            raise error(
                "value_and_grad_from_state needs exactly one record with value and grad "
                f"fields in the state (a line search's); found {len(records)}"
            )
        value, grad = records[0].value, records[0].grad
        if grad is None:
            raise ValueError(
                "value_and_grad_from_state found no gradient in the state: build the line "
                "search with store_grad=True (scale_by_backtracking_linesearch keeps none "
                "by default)"
            )

        def compute():
            new_value, new_grad = _value_and_grad(lambda p: value_fn(p, *args, **kwargs))(params)
            return jnp.asarray(new_value, value.dtype), _store(new_grad, grad)

        # Closures rather than operands: params may hold leaves that are not arrays.
        return jax.lax.cond(jnp.isfinite(value), lambda: (value, grad), compute)

    return value_and_grad


def _is_record(x: Any) -> bool:
    fields = getattr(x, "_fields", ())
    return isinstance(x, tuple) and "value" in fields and "grad" in fields
