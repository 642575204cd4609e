r"""Adding to the updates: decoupled weight decay and annealed Gaussian gradient noise.

The noise's PRNG key is a leaf of the transformation (a typed key array next to the float32
hyperparameters), so re-creating it with another key reuses the compiled program, and
``jax.vmap`` over keys trains independently-noised models.

Notation in the docstrings: :math:`g_t` is the incoming update (the gradient, or the output of
the previous transformation in a chain), :math:`u_t` the outgoing one, :math:`\theta_t` the
parameters, :math:`t \ge 1` the step count. Arithmetic runs in at least float32 whatever the
parameter dtype; state slots keep the dtype they were created with (float32 for bf16/fp16
parameters unless a ``*_dtype`` argument says otherwise); updates leave in the incoming
gradient's dtype.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from optim._hyper import is_schedule, nonnegative, value_at
from optim._keywords import suggest_keywords
from optim._numerics import (
    cast_like_grads,
)
from optim._pytree import pytree_dataclass
from optim._tree import (
    PyTree,
    check_params,
    compute_dtype,
    is_trainable,
    map_arrays,
    safe_increment,
    upcast,
    zero_count,
)
from optim._warnings import warn_user
from optim.base import EmptyState, Transformation, check_updates


class AddDecayedWeightsState(NamedTuple):
    """The step count, kept only when the weight decay is a schedule.

    Attributes:
      count: the number of updates made so far (int32 scalar), the schedule's argument.
    """

    count: jax.Array


@pytree_dataclass
class AddDecayedWeights(Transformation):
    r"""Decoupled weight decay (Loshchilov & Hutter, 2019): :math:`u_t = g_t + \lambda_t\theta_t`.

    Placed before the learning-rate scaling this gives AdamW's
    :math:`\theta_{t+1} = \theta_t - \eta(\hat u_t + \lambda\theta_t)`. Built by
    :func:`optim.add_decayed_weights`.

    Attributes:
      weight_decay: :math:`\lambda`, a float32 scalar >= 0 or a schedule.
    """

    elementwise: ClassVar[bool] = True  # safe on raveled parameters (optim.train._flat)

    weight_decay: Any = nonnegative(schedule=True)

    def init(self, params: PyTree) -> EmptyState | AddDecayedWeightsState:
        check_params(params)
        if is_schedule(self.weight_decay):
            return AddDecayedWeightsState(count=zero_count())
        return EmptyState()

    def update(self, updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            if not any(is_trainable(g) for g in jax.tree.leaves(updates)):
                return updates, state  # nothing to decay (e.g. every leaf masked out)
            raise ValueError("add_decayed_weights needs params: call update(grads, state, params)")
        if is_schedule(self.weight_decay):
            wd = value_at(self.weight_decay, state.count)
            state = AddDecayedWeightsState(count=safe_increment(state.count))
        else:
            wd = self.weight_decay
        params = _without_missing_updates(updates, params)
        check_updates(updates, params, "params")
        out = map_arrays(lambda g, p: upcast(g) + wd * upcast(p), updates, params)
        return cast_like_grads(out, updates), state


def _without_missing_updates(updates: PyTree, params: PyTree) -> PyTree:
    """``params`` with the subtrees where ``updates`` has ``None`` set to ``None`` too (optax:
    a ``None`` update stays ``None``, whatever the parameter under it)."""
    is_none = lambda x: x is None
    if not any(x is None for x in jax.tree.leaves(updates, is_leaf=is_none)):
        return params
    try:
        return jax.tree.map(lambda g, p: None if g is None else p, updates, params, is_leaf=is_none)
    except ValueError:
        return params  # not a prefix: check_updates names the difference


@suggest_keywords
def add_decayed_weights(weight_decay: Any = 0.0, mask: Any = None) -> Any:
    r"""Add ``weight_decay * params`` to the updates, on the leaves ``mask`` selects
    (``optax.add_decayed_weights``; Loshchilov & Hutter, 2019, "Decoupled Weight Decay
    Regularization").

    .. math:: u_t = g_t + \lambda_t \theta_t

    Placed before :func:`optim.scale_by_learning_rate` in a chain, this is AdamW's decoupled
    weight decay. Needs ``params`` in ``update``; a ``None`` update stays ``None``.

    Args:
      weight_decay: :math:`\lambda`, a number >= 0, or a schedule (a function of the number
        of updates made so far, ``0`` at the first step).
      mask: a pytree of booleans with the structure of the params (or a prefix of it), or a
        function ``params -> such a pytree``: the decay applies where True, the updates pass
        unchanged elsewhere (see :func:`optim.masked`). ``None``: every leaf.

    Returns:
      An ``AddDecayedWeights`` transformation (an :class:`optim.GradientTransformation`;
      inside :func:`optim.masked` when ``mask`` is given); its state is an
      :class:`optim.AddDecayedWeightsState` for a schedule, empty for a number.

    Raises:
      ValueError: (in ``update``) ``params`` is missing while some update is a floating array.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.add_decayed_weights(0.1, mask={"w": True, "b": False})
      >>> params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array([1.0])}
      >>> grads = {"w": jnp.array([1.0, -2.0]), "b": jnp.array([0.5])}
      >>> updates, state = tx.update(grads, tx.init(params), params)
      >>> print(updates["w"], updates["b"])
      [ 1.1 -1.8] [0.5]

    References:
      Loshchilov & Hutter, 2019, https://arxiv.org/abs/1711.05101
    """
    tx = AddDecayedWeights(weight_decay)
    if mask is None:
        return tx
    from optim.transforms._masking import masked

    return masked(tx, mask)


class AddNoiseState(NamedTuple):
    """The step count (for the annealing) and the key the next step's noise is drawn from.

    Attributes:
      count: the number of updates made so far (int32 scalar).
      rng_key: the typed PRNG key the next step's noise is drawn from.
    """

    count: jax.Array
    rng_key: jax.Array


@pytree_dataclass
class AddNoise(Transformation):
    r"""Annealed gradient noise (Neelakantan et al., 2015, "Adding Gradient Noise Improves
    Learning for Very Deep Networks").

    .. math:: u_t = g_t + \sigma_t \xi_t,\quad \sigma_t^2 = \frac{\eta}{t^\gamma},\quad
        \xi_t \sim \mathcal N(0, I)

    (complex leaves: standard complex normal). The noise is drawn exactly as optax draws it:
    the state's key is split into the next state's key and a sample key, which is split once
    per leaf of the updates in tree order; each leaf samples ``jax.random.normal`` in its
    compute dtype. Built by :func:`optim.add_noise`.

    Attributes:
      eta: :math:`\eta`, the initial noise variance (float32, >= 0).
      gamma: :math:`\gamma`, the decay exponent of the variance (float32, >= 0).
      key: the typed PRNG key the state starts from (a leaf, so a new key does not
        recompile).
    """

    eta: Any = nonnegative()
    gamma: Any = nonnegative()
    key: jax.Array

    def init(self, params: PyTree) -> AddNoiseState:
        check_params(params)
        return AddNoiseState(count=zero_count(), rng_key=self.key)

    def update(self, updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        std = jnp.sqrt(self.eta / count**self.gamma)
        rng_key, sample_key = jax.random.split(state.rng_key)
        # One key per non-None leaf, in order, as optax splits (it counts every leaf).
        treedef = jax.tree.structure(updates)
        keys = jax.random.split(sample_key, treedef.num_leaves)
        key_tree = jax.tree.unflatten(treedef, [keys[i] for i in range(treedef.num_leaves)])
        out = map_arrays(
            lambda g, k: upcast(g) + std * jax.random.normal(k, g.shape, compute_dtype(g)),
            updates,
            key_tree,
        )
        return cast_like_grads(out, updates), AddNoiseState(count=count, rng_key=rng_key)


def _as_key(key: Any) -> jax.Array:
    """A typed PRNG key from an int seed, a typed key, or a legacy uint32 key of shape (2,)."""
    if isinstance(key, (bool, str, bytes, float)):
        raise TypeError(f"key must be an int seed or a jax.random key, got {key!r}")
    if isinstance(key, int):
        return jax.random.key(key)
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
        if jnp.shape(key) != ():
            raise ValueError(f"key must be a single key, got a key array of shape {key.shape}")
        return key
    if dtype is not None and jnp.issubdtype(dtype, jnp.integer):
        if jnp.shape(key) == ():
            return jax.random.key(key)
        if jnp.shape(key) == (2,) and dtype == jnp.uint32:  # jax.random.PRNGKey(seed)
            return jax.random.wrap_key_data(key)
    raise TypeError(
        "key must be an int seed, a jax.random.key(seed) or a jax.random.PRNGKey(seed), got "
        f"{type(key).__name__} of dtype {dtype} and shape {jnp.shape(key) if dtype else '-'}"
    )


def _resolve_key(key: Any, seed: int | None) -> jax.Array:
    """optax's handling of ``key=None`` and the deprecated ``seed``; warnings name the caller."""
    if seed is not None:
        warn_user("seed is deprecated, pass key instead", DeprecationWarning)
        if key is not None:
            raise ValueError("give key or seed, not both")
        key = seed
    if key is None:
        warn_user("no key given for the gradient noise, using key 0; pass key=")
        key = 0
    return _as_key(key)


@suggest_keywords
def add_noise(eta: Any, gamma: Any, key: Any = None, *, seed: int | None = None) -> AddNoise:
    r"""Add annealed Gaussian noise to the updates (``optax.add_noise``; Neelakantan et al.,
    2015, "Adding Gradient Noise Improves Learning for Very Deep Networks").

    .. math:: u_t = g_t + \sigma_t \xi_t,\quad \sigma_t^2 = \frac{\eta}{t^\gamma},\quad
        \xi_t \sim \mathcal N(0, I)

    drawn as optax draws it, so a key gives optax's noise.

    Args:
      eta: :math:`\eta`, the noise variance at the first step: a number >= 0.
      gamma: :math:`\gamma`, the exponent of the variance's decay with the step: a number
        >= 0 (the paper uses 0.55).
      key: an int seed, a ``jax.random.key(seed)`` or a legacy ``jax.random.PRNGKey(seed)``.
        As in optax, ``None`` warns and uses key 0.
      seed: deprecated (warns): an int seed in place of ``key``; give one of the two.

    Returns:
      An ``AddNoise`` transformation (an :class:`optim.GradientTransformation`) whose state
      is an :class:`optim.AddNoiseState`.

    Raises:
      TypeError: ``key`` is not an int seed or a PRNG key.
      ValueError: both ``key`` and ``seed`` are given, or ``key`` is an array of keys.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> tx = optim.add_noise(eta=0.01, gamma=0.55, key=0)
      >>> state = tx.init({"w": jnp.zeros(2)})
      >>> updates, state = tx.update({"w": jnp.array([1.0, -2.0])}, state)
      >>> print(updates["w"].shape, int(state.count))
      (2,) 1

    References:
      Neelakantan et al., 2015, https://arxiv.org/abs/1511.06807
    """
    return AddNoise(
        eta=eta,
        gamma=gamma,
        key=_resolve_key(key, seed),
    )
