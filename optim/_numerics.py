"""Numerical helpers shared by the building blocks: moments, bias correction, dtypes.

Conventions: arithmetic in the compute dtype (at least float32, see ``_tree.upcast``); state
slots stored back in their own dtype (``store_like``); outgoing updates in the incoming
gradient's dtype (``cast_like_grads``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import Decay
from optim._tree import PyTree, abs_sq, map_arrays, safe_increment, upcast


def store_like(new: PyTree, old: PyTree) -> PyTree:
    """Cast freshly computed slot values back to the slot's storage dtype."""
    return map_arrays(lambda n, o: n.astype(o.dtype), new, old)


def cast_like_grads(updates: PyTree, grads: PyTree) -> PyTree:
    """Cast outgoing updates to the dtype of the incoming ones."""
    return map_arrays(lambda u, g: u.astype(g.dtype), updates, grads)


def decay_rate(decay: Any) -> Any:
    """:math:`\\beta` of a ``Decay`` (or of a plain scalar)."""
    return decay.rate if isinstance(decay, Decay) else decay


def decay_complement(decay: Any) -> Any:
    """:math:`1 - \\beta`: the ``Decay``'s own complement, or computed from a plain scalar."""
    return decay.complement if isinstance(decay, Decay) else 1 - decay


def ema_update(g: jax.Array, m: jax.Array, decay: Any) -> jax.Array:
    """:math:`(1 - \\beta) g + \\beta m` in the compute dtype (``decay``: a ``Decay`` or a
    scalar)."""
    return decay_complement(decay) * upcast(g) + decay_rate(decay) * upcast(m)


def ema_update_sq(g: jax.Array, v: jax.Array, decay: Any) -> jax.Array:
    """:math:`(1 - \\beta) |g|^2 + \\beta v` in the compute dtype."""
    return decay_complement(decay) * abs_sq(upcast(g)) + decay_rate(decay) * upcast(v)


@jax.custom_jvp
def safe_sqrt(x: PyTree) -> PyTree:
    r""":math:`\sqrt{x}` (the same values as ``jnp.sqrt``) with derivative 0 at :math:`x = 0`,
    of an array or of every array of a tree (one call for a whole tree is cheaper to trace and
    lower than one a leaf).

    ``jnp.sqrt``'s derivative at 0 is inf. A second moment is 0 exactly where every gradient so
    far was 0, and there the chain rule multiplies that inf by a zero cotangent: NaN, which
    ``jax.grad`` through an optimizer step (meta-learning a learning rate, ``b1`` or ``eps``)
    spreads to every hyperparameter. The update does not move with :math:`v` there (its
    numerator is 0), so 0 is the derivative that keeps the product right.
    """
    return jax.tree.map(jnp.sqrt, x)


@safe_sqrt.defjvp
def _safe_sqrt_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (dx,) = primals, tangents
    leaves, treedef = jax.tree.flatten(x)
    roots, root_tangents = [], []
    for leaf, tangent in zip(leaves, treedef.flatten_up_to(dx), strict=True):
        root = jnp.sqrt(leaf)
        positive = leaf > 0
        roots.append(root)
        root_tangents.append(jnp.where(positive, tangent / (2 * jnp.where(positive, root, 1)), 0))
    return treedef.unflatten(roots), treedef.unflatten(root_tangents)


@jax.custom_jvp
def inverse_sqrt(x: jax.Array) -> jax.Array:
    r""":math:`x^{-1/2}` (``x ** -0.5``, the same values) with a derivative that cannot overflow.

    The derivative :math:`-\tfrac12 x^{-3/2}` overflows float32 for :math:`x < 10^{-26}`, and
    Adafactor's second moment is :math:`\epsilon_1 = 10^{-30}` where the gradients are 0: there
    the chain rule meets inf times a zero tangent, NaN. Computed as
    :math:`-\tfrac12 x^{-1/2} (\dot x / x)` the zero tangent stays 0.
    """
    return x**-0.5


@inverse_sqrt.defjvp
def _inverse_sqrt_jvp(primals: tuple, tangents: tuple) -> tuple:
    (x,), (dx,) = primals, tangents
    y = x**-0.5
    return y, -0.5 * y * (dx / x)


def adaptive_step(m: jax.Array, v: jax.Array, eps: Any, eps_root: Any = 0.0) -> jax.Array:
    r""":math:`m / (\sqrt{v + \epsilon_{root}} + \epsilon)`, and 0 where that denominator is 0.

    The denominator is 0 only with :math:`\epsilon = \epsilon_{root} = 0` where :math:`v = 0`:
    every gradient so far was 0 (0/0, NaN in optax) or so small that its square underflowed
    (:math:`|g| \lesssim 10^{-21}` in float32; m/0 = inf in optax). Such a coordinate does
    not move. Elsewhere the values are the plain formula's.
    """
    return over_root(m, safe_sqrt(v + eps_root), eps, known_positive(eps))


def adaptive_steps(ms: PyTree, vs: PyTree, eps: Any, eps_root: Any = 0.0) -> PyTree:
    """``adaptive_step`` at every array of two trees of one structure, with one ``safe_sqrt``
    for the whole tree (the same values; less to trace and lower than one call a leaf)."""
    roots = safe_sqrt(map_arrays(lambda v: v + eps_root, vs))
    eps_positive = known_positive(eps)
    return map_arrays(lambda m, root: over_root(m, root, eps, eps_positive), ms, roots)


def over_root(m: jax.Array, root: jax.Array, eps: Any, eps_positive: bool) -> jax.Array:
    r""":math:`m / (r + \epsilon)`, and 0 where that denominator is 0 (``adaptive_step``);
    ``eps_positive``: ``known_positive(eps)``, decided where ``eps`` may still be concrete."""
    denominator = root + eps
    if eps_positive:
        # r >= 0, so r + eps > 0 (or NaN): the select below would never pick inf. Skipping it
        # gives the same values and a shorter program (a closed-over optimizer's eps is known).
        return m / denominator
    # m / inf = 0. Only the divisor is selected: the program XLA compiles then rounds as
    # optax's plain m / d does, under jit too (a select of m as well changes how XLA fuses the
    # division with the learning rate: last-bit differences). No NaN in the derivative either:
    # the quotient's partials at d = inf are 0. Written with lax rather than jnp.where: the same
    # select, without a nested jit call to trace and lower for every leaf.
    if jnp.iscomplexobj(denominator):  # ordered as NumPy orders complex numbers (lax has no order)
        positive = denominator > 0
    else:
        positive = jax.lax.gt(denominator, np.zeros((), denominator.dtype))
    return m / jax.lax.select(positive, denominator, jax.lax.full_like(denominator, np.inf))


def known_positive(value: Any) -> bool:
    """Whether ``value`` is concrete (not traced) and every entry of it is > 0."""
    if isinstance(value, jax.core.Tracer):
        return False
    array = np.asarray(value)
    return array.dtype.kind in "fiu" and bool(np.all(array > 0))


def square_safe(g: jax.Array, terms: int = 1) -> jax.Array:
    r"""``g`` with finite entries clipped in magnitude to :math:`\sqrt{\max} / (4\sqrt{n})`.

    ``max`` is the largest finite value of ``g``'s dtype and ``n`` = ``terms``, the number of
    entries summed into one square (a leaf's size for a layer-wise norm): :math:`2^{62}
    \approx 4.6 \cdot 10^{18}` for float32 and ``terms=1``. A second moment holds an average
    of squared gradients; in float32 :math:`g^2` overflows for :math:`|g| > 1.8 \cdot
    10^{19}`, and a moment that reaches inf stays inf (:math:`\beta \cdot \infty = \infty`),
    so one spike would freeze its coordinate for good (its step :math:`m/\infty = 0`). Below
    the bound the values are unchanged; above it the gradient counts as the bound, in the
    first moment too, so that their ratio (the step) keeps its meaning. The 4 leaves room for
    squares of sums of up to three bounded terms (:math:`9 \cdot 2^{124} < 2^{128}`: AdaBelief's
    :math:`g - m`, Adan's :math:`g + (1-\beta_2)(g - g_{t-1})`).

    For real dtypes this is ``square_bounded(g) + 0 * g``: elementwise, so XLA fuses it into
    the moments' kernels (no reduction, no branch), and ``0 * g`` is 0 for a finite entry and
    NaN for a non-finite one, so a NaN or inf gradient still gives a non-finite update (an inf
    one arrives as NaN; optax's Adam turns it into ``inf / inf`` = NaN as well). Complex
    gradients are scaled to the bound in magnitude, keeping their phase, in a ``lax.cond`` taken
    only when some entry exceeds it.
    """
    if not jnp.iscomplexobj(g):
        return nonfinite_kept(square_bounded(g, terms), g)
    real = jnp.finfo(g.dtype).dtype
    bound = np.asarray(np.sqrt(np.finfo(real).max) / (4 * np.sqrt(max(terms, 1))), real)
    magnitude = jnp.abs(g)
    needed = jnp.any(jnp.isfinite(magnitude) & (magnitude > bound))
    # The branches are module functions taking the bound as an operand: lax.cond caches its
    # compiled branches by function identity, so closures would recompile every eager step.
    return jax.lax.cond(needed, _clipped_to, _unchanged, g, bound)


def square_bounded(g: jax.Array, terms: int = 1) -> jax.Array:
    """``g`` clipped to ``square_safe``'s bound, a NaN kept NaN, but ±inf clipped too.

    One elementwise clamp: what a second moment needs, where only overflow matters. Pair it
    with ``square_safe`` in the first moment, which keeps ±inf non-finite (as NaN), so a
    non-finite gradient still gives a non-finite step while the second-moment kernel stays
    one operation shorter (one clamp, no ``0 * g``): Adam's step compiles faster
    (``nonfinite_kept(square_bounded(g), g)`` is ``square_safe(g)``). Complex ``g`` gets
    ``square_safe`` itself.
    """
    if jnp.iscomplexobj(g):
        return square_safe(g, terms)
    bound = np.asarray(np.sqrt(np.finfo(g.dtype).max) / (4 * np.sqrt(max(terms, 1))), g.dtype)
    return jax.lax.clamp(-bound, g, bound)  # lax: no nested jit (jnp.clip's); NaN stays NaN


def nonfinite_kept(bounded: jax.Array, g: jax.Array) -> jax.Array:
    """``square_bounded(g)`` made NaN where real ``g`` is not finite: ``bounded + 0 * g``
    (complex ``bounded`` is ``square_safe(g)``, which keeps non-finite entries already)."""
    return bounded if jnp.iscomplexobj(bounded) else bounded + 0 * g


def _clipped_to(g: jax.Array, bound: jax.Array) -> jax.Array:
    """Complex ``g`` with finite entries above ``bound`` in magnitude scaled to ``bound``."""
    magnitude = jnp.abs(g)
    over = jnp.isfinite(magnitude) & (magnitude > bound)
    return jnp.where(over, g * (bound / jnp.where(over, magnitude, 1)).astype(g.dtype), g)


def _unchanged(g: jax.Array, bound: jax.Array) -> jax.Array:
    del bound
    return g


@functools.partial(jax.jit, inline=True)
def one_minus_power(rate: jax.Array, count: jax.Array) -> jax.Array:
    # Compiled even when called eagerly, as optax's bias correction is: XLA's compiled power
    # and the op-by-op one round differently, and 1 - rate**t cancels most digits
    # (0.00299698 against 0.00299692 for 1 - 0.999**3), so this keeps the values optax gives.
    return 1 - rate**count


def debias(m: jax.Array, decay: Any, count: jax.Array) -> jax.Array:
    """Bias correction :math:`m / (1 - \\beta^t)` of one array (see ``debias_tree``)."""
    return m / one_minus_power(decay_rate(decay), count).astype(m.dtype)


@functools.partial(jax.jit, inline=True)
def _debias_arrays(arrays: list, rate: jax.Array, count: jax.Array) -> list:
    correction = 1 - rate**count
    return [m / correction.astype(m.dtype) for m in arrays]


def debias_tree(tree: PyTree, decay: Any, count: jax.Array) -> PyTree:
    """Bias correction :math:`m / (1 - \\beta^t)` of every array of ``tree`` in one compiled
    program, as optax's ``tree.bias_correction`` (``None`` where ``tree`` holds no array).

    Whole trees, not leaf by leaf: XLA compiles the division by a scalar shared by one array
    as a multiplication by its reciprocal, and by a scalar shared by several arrays as a true
    division, so the same grouping as optax's gives the same last bits.
    """
    arrays: list = []
    map_arrays(arrays.append, tree)
    debiased = iter(_debias_arrays(arrays, decay_rate(decay), count))
    return map_arrays(lambda _: next(debiased), tree)


def debiased_first_moment(
    mu: PyTree, grads: PyTree, b1: jax.Array, count: jax.Array, nesterov: bool
) -> PyTree:
    r""":math:`\hat m_t`, or with Nesterov momentum (Dozat, 2016)
    :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`."""
    if not nesterov:
        return debias_tree(mu, b1, count)
    return map_arrays(
        lambda m, g: nesterov_moment(m, g, b1),
        debias_tree(mu, b1, safe_increment(count)),
        debias_tree(map_arrays(upcast, grads), b1, count),
    )


def nesterov_moment(m_next: jax.Array, g: jax.Array, b1: Any) -> jax.Array:
    r"""Nesterov's first moment (Dozat, 2016) from debiased arrays at one leaf:
    :math:`\beta_1 m_t / (1-\beta_1^{t+1}) + (1-\beta_1) g_t / (1-\beta_1^t)`, given
    ``m_next`` :math:`= m_t / (1-\beta_1^{t+1})` and ``g`` :math:`= g_t / (1-\beta_1^t)`."""
    return decay_rate(b1) * m_next + decay_complement(b1) * upcast(g)
