r"""bfloat16 parameters with no float32 copy that still learn from small updates (Zamirai et al.,
2020, "Revisiting BFloat16 Training").

With round-to-nearest, :math:`\mathrm{RN}(\theta + u) = \theta` whenever :math:`|u|` is below
half a unit in the last place of :math:`\theta` (for bfloat16, 8 significant bits:
:math:`|u| < 2^{-9}|\theta|` roughly), so late, small updates are lost and training stalls. Two
remedies, each a functional ``apply_updates_*`` and a wrapper around any optimizer:

* stochastic rounding (``apply_updates_stochastic``, ``stochastic_rounding(tx)``):
  :math:`\mathrm{SR}(\theta + u)` is unbiased, so small updates move the parameters in
  expectation (Gupta et al., 2015, "Deep Learning with Limited Numerical Precision");
* Kahan summation (``apply_updates_kahan``, ``kahan_summation(tx)``): a compensation buffer in
  the parameters' dtype keeps what rounding dropped and adds it back at the next step (Kahan,
  1965, "Further remarks on reducing truncation errors").

A wrapper runs the inner optimizer, computes the rounded new parameters itself and returns the
difference ``new - old`` in float32. ``apply_updates`` (ours or optax's) adds it in float32 and
casts back, which lands exactly on ``new``: the difference of two bfloat16 numbers is exact in
float32 unless :math:`|new| < 2^{-16} |old|` (a parameter collapsing to nearly zero in one
step), and then the result is off by about :math:`2^{-24}|old|`. Its updates are the final,
already rounded steps, so a wrapper must be the *last* transformation of a chain.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import canonical_dtype, dtype_option
from optim._keywords import suggest_keywords
from optim._pytree import pytree_dataclass, static
from optim._tree import (
    PyTree,
    check_params,
    check_same_structure,
    is_trainable,
    map_arrays,
)
from optim.base import Transformation, as_transformation, require_params
from optim.precision._policy import _real_float_dtype


def _round_bfloat16(x: jax.Array, key: jax.Array) -> jax.Array:
    """float32 -> bfloat16 by adding 16 random bits below bfloat16's last bit and truncating.

    bfloat16 is the top half of a float32. The low half :math:`\\ell \\in [0, 2^{16})` carries
    into the kept half with probability exactly :math:`\\ell / 2^{16}`, the distance to the
    lower neighbour in units of the gap: unbiased, for either sign (rounding acts on the
    magnitude), and a carry into the exponent is the correct next number. Infinities have
    zero low bits and stay; NaNs are kept as NaNs.
    """
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
    noise = jax.random.bits(key, x.shape, jnp.uint32) >> 16
    rounded = jax.lax.bitcast_convert_type((bits + noise) & jnp.uint32(0xFFFF0000), jnp.float32)
    return jnp.where(jnp.isnan(x), x, rounded).astype(jnp.bfloat16)


def _round_to_neighbour(x: jax.Array, dtype: np.dtype, key: jax.Array) -> jax.Array:
    """Any wider float -> ``dtype``: the upper neighbour with probability ``(x - lo) / (hi - lo)``.

    Used where the bit trick does not apply (float16's exponent range differs from float32's,
    float64 sources). ``hi - lo`` is a power of two, so the probability is exact; the uniform
    draw has the source's resolution.
    """
    nearest = x.astype(dtype)
    back = nearest.astype(x.dtype)
    other = jnp.nextafter(nearest, jnp.where(back < x, jnp.inf, -jnp.inf).astype(dtype))
    lo, hi = jnp.minimum(nearest, other), jnp.maximum(nearest, other)
    lo_x = lo.astype(x.dtype)
    p_up = (x - lo_x) / (hi.astype(x.dtype) - lo_x)
    rounded = jnp.where(jax.random.uniform(key, x.shape, x.dtype) < p_up, hi, lo)
    return jnp.where((back == x) | ~jnp.isfinite(x), nearest, rounded)


@suggest_keywords
def stochastic_round(x: jax.Array, dtype: Any, key: jax.Array) -> jax.Array:
    r"""Round ``x`` to ``dtype`` stochastically: unbiased, :math:`\mathbb{E}[\mathrm{SR}(x)] = x`.

    With :math:`\lfloor x \rfloor, \lceil x \rceil` the neighbours of :math:`x` in ``dtype``:

    .. math:: \mathrm{SR}(x) = \begin{cases} \lceil x \rceil & \text{with probability }
        (x - \lfloor x \rfloor) / (\lceil x \rceil - \lfloor x \rfloor) \\
        \lfloor x \rfloor & \text{otherwise} \end{cases}

    (Gupta et al., 2015, "Deep Learning with Limited Numerical Precision"). Numbers already
    representable in ``dtype`` and non-finite numbers are returned exactly. float32 to
    bfloat16 adds random bits below bfloat16's last bit and truncates (one random word per
    element); other narrowing casts pick a neighbour. Where ``dtype`` is not narrower than
    ``x``, this is a plain cast.

    Args:
      x: a real floating array (float32, float64, ...).
      dtype: the real floating dtype to round to (``jnp.bfloat16``, ``"bfloat16"``,
        ``"bf16"``, ``jnp.float16``, ...).
      key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``) for the random draws.

    Returns:
      An array of ``x``'s shape and dtype ``dtype``.

    Raises:
      TypeError: ``x`` is not a real floating array, or ``dtype`` is not a real floating dtype.

    Examples:
      >>> import jax, jax.numpy as jnp, optim
      >>> x = jnp.full(1000, 1.0 + 2.0 ** -10)   # a quarter of the way from 1 to the next bf16
      >>> keys = jax.random.split(jax.random.PRNGKey(0), 1000)
      >>> rounded = jax.vmap(lambda k: optim.stochastic_round(x[0], jnp.bfloat16, k))(keys)
      >>> sorted(set(rounded.astype(float).tolist()))
      [1.0, 1.0078125]
    """
    x = jnp.asarray(x)
    dtype = _real_float_dtype(dtype, "dtype")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"x must be a real floating array, got dtype {x.dtype}")
    if jnp.finfo(dtype).nmant >= jnp.finfo(x.dtype).nmant:
        return x.astype(dtype)
    if x.dtype == jnp.float32 and dtype == jnp.bfloat16:
        return _round_bfloat16(x, key)
    return _round_to_neighbour(x, dtype, key)


def _sum_dtype(*arrays: jax.Array) -> Any:
    """The dtype sums run in: the widest of the operands and float32."""
    return jnp.result_type(*(a.dtype for a in arrays), jnp.float32)


def _flat_leaves(params: PyTree, *trees: PyTree) -> tuple[list[Any], list[list[Any]], Any]:
    """Leaves of ``params`` and of each tree (``None`` counted), and ``params``' treedef."""
    leaves, treedef = jax.tree.flatten(params, is_leaf=lambda x: x is None)
    return leaves, [jax.tree.leaves(t, is_leaf=lambda x: x is None) for t in trees], treedef


@suggest_keywords
def apply_updates_stochastic(params: PyTree, updates: PyTree, key: jax.Array) -> PyTree:
    r"""``apply_updates`` with stochastic rounding: :math:`\theta \gets \mathrm{SR}(\theta + u)`.

    The sum is computed in float32 (or wider) and rounded stochastically to each parameter's
    dtype (``stochastic_round``), so :math:`\mathbb{E}[\theta_{t+1}] = \theta_t + u_t` however
    small :math:`u_t`: bfloat16 parameters follow updates far below half their ulp on
    average, where round-to-nearest discards them (Zamirai et al., 2020, "Revisiting
    BFloat16 Training"). Parameters of float32 (the dtype of the sum) are updated as by
    ``apply_updates``. Each leaf draws from its own split of ``key``; non-floating leaves and
    ``None`` updates leave the parameter untouched.

    Args:
      params: the parameters, a pytree (typically of bfloat16 arrays).
      updates: updates with the structure of ``params`` (``None`` where a leaf has none), in
        any floating dtype (float32 keeps small updates exactly until the rounding).
      key: a PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``); use a fresh one every
        step.

    Returns:
      The new parameters, in the structure and dtypes of ``params``.

    Raises:
      TypeError: a parameter is an integer, boolean or complex array.
      ValueError: ``updates`` does not have the leaf paths and shapes of ``params``.

    Examples:
      An update of a quarter ulp moves bfloat16 parameters on average (round-to-nearest would
      leave them at 1):

      >>> import jax, jax.numpy as jnp, optim
      >>> params = {"w": jnp.ones(1000, jnp.bfloat16)}
      >>> updates = {"w": jnp.full(1000, 2.0 ** -10)}
      >>> new = optim.apply_updates_stochastic(params, updates, jax.random.key(0))
      >>> new["w"].dtype, round(float(new["w"].astype(jnp.float32).mean()), 3)
      (dtype(bfloat16), 1.001)
    """
    check_params(params)
    check_same_structure(updates, params, "updates", "params")
    for path, p in jax.tree_util.tree_flatten_with_path(params)[0]:
        if is_trainable(p) and jnp.iscomplexobj(p):
            raise TypeError(
                f"stochastic rounding needs real parameters: params{jax.tree_util.keystr(path)} "
                f"is {p.dtype}; round its real and imaginary parts as separate real arrays"
            )
    leaves, (update_leaves,), treedef = _flat_leaves(params, updates)
    keys = jax.random.split(key, len(leaves))

    def add(p: Any, u: Any, k: jax.Array) -> Any:
        if not is_trainable(p) or u is None:
            return p
        total = _sum_dtype(p, u)
        return stochastic_round(p.astype(total) + u.astype(total), p.dtype, k)

    new = [add(p, u, k) for p, u, k in zip(leaves, update_leaves, keys, strict=True)]
    return jax.tree.unflatten(treedef, new)


@suggest_keywords
def kahan_compensation(params: PyTree, dtype: Any = None) -> PyTree:
    """The initial compensation for ``apply_updates_kahan``: zeros in each parameter's dtype
    (or ``dtype``) at every floating leaf, ``None`` elsewhere.

    Args:
      params: the parameters, a pytree of floating (or complex) arrays and non-array leaves.
      dtype: the dtype of the buffer (e.g. ``jnp.float32`` for a more exact compensation);
        None: each parameter's own dtype.

    Returns:
      A pytree of ``params``' structure: zeros of each array's shape, ``None`` at non-array
      leaves.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> optim.kahan_compensation({"w": jnp.ones(2, jnp.bfloat16)})
      {'w': Array([0, 0], dtype=bfloat16)}
    """
    check_params(params)
    dtype = canonical_dtype(dtype, "dtype")
    return map_arrays(lambda p: jnp.zeros(p.shape, dtype or p.dtype), params)


@suggest_keywords
def apply_updates_kahan(
    params: PyTree, updates: PyTree, compensation: PyTree
) -> tuple[PyTree, PyTree]:
    r"""``apply_updates`` with Kahan-compensated summation; returns ``(params, compensation)``.

    With :math:`c` the compensation (what rounding dropped so far) and :math:`\mathrm{RN}`
    round-to-nearest into the parameters' dtype, every step is, in float32 (or wider):

    .. math:: y_t = u_t + c_{t-1},\qquad \theta_t = \mathrm{RN}(\theta_{t-1} + y_t),\qquad
        c_t = y_t - (\theta_t - \theta_{t-1}).

    :math:`\theta_t - \theta_{t-1}` is the update actually applied, so :math:`c_t` is the
    part of :math:`y_t` that was rounded away; it is added back at the next step, and
    :math:`\theta_t + c_t = \theta_0 + \sum_{s\le t} u_s` up to the rounding of :math:`c`
    itself. Updates below half an ulp accumulate in :math:`c` until they move
    :math:`\theta` (Kahan, 1965, "Further remarks on reducing truncation errors"; used for
    bfloat16 weights by Zamirai et al., 2020, "Revisiting BFloat16 Training"). :math:`c`
    stays below half an ulp of :math:`\theta`, so a bfloat16 buffer holds it with relative
    error :math:`2^{-9}`: the result is close to float32 master weights at half their memory.

    Args:
      params: the parameters.
      updates: updates of ``params``' structure (``None`` where a leaf has none).
      compensation: from ``kahan_compensation(params)`` or the previous call.

    Returns:
      ``(params, compensation)``: the new parameters (in ``params``' dtypes) and the new
      compensation (in its own dtypes), both of ``params``' structure.

    Raises:
      TypeError: a parameter is an integer or boolean array.
      ValueError: ``updates`` or ``compensation`` does not match ``params``.

    Examples:
      Four updates of half an ulp each, each lost by round-to-nearest, add up:

      >>> import jax.numpy as jnp, optim
      >>> params = {"w": jnp.ones(2, jnp.bfloat16)}
      >>> compensation = optim.kahan_compensation(params)
      >>> for _ in range(4):
      ...     params, compensation = optim.apply_updates_kahan(
      ...         params, {"w": jnp.full(2, 2.0 ** -9)}, compensation)
      >>> params["w"].astype(jnp.float32)
      Array([1.0078125, 1.0078125], dtype=float32)
    """
    check_params(params)
    check_same_structure(updates, params, "updates", "params")
    check_same_structure(compensation, params, "compensation", "params")
    leaves, (update_leaves, comp_leaves), treedef = _flat_leaves(params, updates, compensation)

    def add(p: Any, u: Any, c: Any) -> tuple[Any, Any]:
        if not is_trainable(p) or u is None or c is None:
            return p, c
        total = _sum_dtype(p, u, c)
        p_wide = p.astype(total)
        y = u.astype(total) + c.astype(total)
        new = (p_wide + y).astype(p.dtype)
        return new, (y - (new.astype(total) - p_wide)).astype(c.dtype)

    pairs = [add(p, u, c) for p, u, c in zip(leaves, update_leaves, comp_leaves, strict=True)]
    return (
        jax.tree.unflatten(treedef, [p for p, _ in pairs]),
        jax.tree.unflatten(treedef, [c for _, c in pairs]),
    )


def _applied(inner_updates: PyTree, new: PyTree, old: PyTree) -> PyTree:
    """``new - old`` in float32 (or wider): what ``apply_updates(old, .)`` turns into ``new``."""

    def delta(u: jax.Array, n: jax.Array, o: jax.Array) -> jax.Array:
        total = _sum_dtype(u, o)
        return n.astype(total) - o.astype(total)

    return map_arrays(delta, inner_updates, new, old)


class StochasticRoundingState(NamedTuple):
    """The PRNG key of the next step's rounding and the wrapped optimizer's state.

    Attributes:
      rng_key: the PRNG key (raw ``uint32``, from ``jax.random.PRNGKey(seed)``) split for the
        next step's rounding.
      inner_state: the wrapped optimizer's state.
    """

    rng_key: jax.Array
    inner_state: Any


@pytree_dataclass
class StochasticRounding(Transformation):
    r"""Updates landing on :math:`\mathrm{SR}(\theta_t + T(g_t))` (see ``stochastic_rounding``)."""

    inner: Any
    seed: int = static()

    def init(self, params: PyTree) -> StochasticRoundingState:
        return StochasticRoundingState(jax.random.PRNGKey(self.seed), self.inner.init(params))

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "stochastic_rounding", " (it rounds the new parameters itself)")
        inner_updates, inner_state = self.inner.update(
            updates, state.inner_state, params, **extra_args
        )
        next_key, key = jax.random.split(state.rng_key)
        new = apply_updates_stochastic(params, inner_updates, key)
        return _applied(inner_updates, new, params), StochasticRoundingState(next_key, inner_state)


@suggest_keywords
def stochastic_rounding(inner: Any, seed: int = 0) -> StochasticRounding:
    r"""Train low-precision (bfloat16) parameters with stochastic rounding of every update.

    .. math:: u_t = \mathrm{SR}\big(\theta_t + T(g_t)\big) - \theta_t,
        \qquad \theta_{t+1} = \theta_t + u_t \text{ (exactly)},

    with :math:`T` the inner optimizer and :math:`\mathrm{SR}` unbiased stochastic rounding
    to the parameters' dtype (``apply_updates_stochastic``; Gupta et al., 2015; Zamirai et
    al., 2020, "Revisiting BFloat16 Training"). The returned updates are float32 (or wider),
    and ``apply_updates`` adds them exactly, so ``optim.fit(loss, bf16_params,
    optim.stochastic_rounding(optim.adamw(1e-3)), ...)`` needs nothing else. Put it last:
    a transformation after it would change updates already rounded. Float32 parameters are
    updated as without the wrapper. The state holds a PRNG key from ``seed``, split every
    step.

    Args:
      inner: the optimizer whose updates are rounded (an ``optim`` or ``optax`` gradient
        transformation).
      seed: an int, the seed of the rounding's PRNG key.

    Returns:
      A gradient transformation (``StochasticRounding``) whose state is a
      :class:`optim.StochasticRoundingState`; its ``update`` needs ``params``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> tx = optim.stochastic_rounding(optim.sgd(1e-4))
      >>> params = {"w": jnp.ones(3, jnp.bfloat16)}
      >>> updates, state = tx.update({"w": jnp.ones(3, jnp.bfloat16)}, tx.init(params), params)
      >>> optim.apply_updates(params, updates)["w"].dtype
      dtype(bfloat16)
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    return StochasticRounding(as_transformation(inner, "inner"), int(seed))


class KahanState(NamedTuple):
    """The compensation buffer (one per floating parameter) and the wrapped optimizer's state.

    Attributes:
      compensation: a pytree of ``params``' structure: what rounding dropped so far, per
        floating parameter (``None`` at other leaves), in ``compensation_dtype`` or the
        parameter's dtype.
      inner_state: the wrapped optimizer's state.
    """

    compensation: PyTree
    inner_state: Any


@pytree_dataclass
class KahanSummation(Transformation):
    r"""Updates that land on Kahan-compensated parameters (see ``kahan_summation``)."""

    inner: Any
    compensation_dtype: Any = dtype_option()

    def init(self, params: PyTree) -> KahanState:
        return KahanState(
            kahan_compensation(params, self.compensation_dtype), self.inner.init(params)
        )

    def update(self, updates, state, params=None, **extra_args):
        require_params(params, "kahan_summation", " (it rounds the new parameters itself)")
        inner_updates, inner_state = self.inner.update(
            updates, state.inner_state, params, **extra_args
        )
        new, compensation = apply_updates_kahan(params, inner_updates, state.compensation)
        return _applied(inner_updates, new, params), KahanState(compensation, inner_state)


@suggest_keywords
def kahan_summation(inner: Any, *, compensation_dtype: Any = None) -> KahanSummation:
    r"""Train low-precision (bfloat16) parameters with Kahan-compensated updates.

    .. math:: y_t = T(g_t) + c_t,\quad \theta_{t+1} = \mathrm{RN}(\theta_t + y_t),\quad
        c_{t+1} = y_t - (\theta_{t+1} - \theta_t),\quad u_t = \theta_{t+1} - \theta_t,

    with :math:`T` the inner optimizer and :math:`c` a compensation buffer kept in the state
    (``apply_updates_kahan``; Kahan, 1965; Zamirai et al., 2020, "Revisiting BFloat16
    Training"). Deterministic, and closer to float32 master weights than stochastic rounding,
    for one extra buffer in the parameters' dtype (``compensation_dtype`` to choose another).
    The returned updates are float32 (or wider) and ``apply_updates`` adds them exactly (for
    float32 parameters: whenever :math:`|y_t| \le |\theta_t|`, Dekker's Fast2Sum condition).
    Put it last in a chain.

    Args:
      inner: the optimizer whose updates are compensated (an ``optim`` or ``optax`` gradient
        transformation).
      compensation_dtype: the dtype of the compensation buffer; None: each parameter's own
        dtype.

    Returns:
      A gradient transformation (``KahanSummation``) whose state is a
      :class:`optim.KahanState`; its ``update`` needs ``params``.

    Examples:
      >>> import jax.numpy as jnp, optim
      >>> tx = optim.kahan_summation(optim.sgd(1e-4))
      >>> tx.init({"w": jnp.ones(3, jnp.bfloat16)}).compensation["w"].dtype
      dtype(bfloat16)
    """
    return KahanSummation(
        as_transformation(inner, "inner"),
        compensation_dtype,
    )
