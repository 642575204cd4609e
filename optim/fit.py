"""``optim.fit``: training as one compiled ``lax.scan`` over optimizer steps.

Each step evaluates ``loss_fn`` and its gradient on a batch, asks the optimizer for updates
(passing the loss as ``value=`` for transformations that want it) and applies them:

.. math:: \\ell_t, g_t = \\nabla L(\\theta_t; B_t),\\quad u_t, s_{t+1} = T(g_t, s_t, \\theta_t),
    \\quad \\theta_{t+1} = \\theta_t + u_t.

``B_t`` is the whole data set (``batch_size=None``: gradient descent) or ``batch_size``
examples drawn without replacement from ``jax.random.split(key, steps)[t]`` (``batch_size=1``
is the seed's stochastic gradient descent). The recorded loss :math:`\\ell_t` is the loss at
the parameters *before* step ``t``'s update, as a hand-written loop would print it.

Everything is traceable: ``fit`` works inside ``jax.jit``, ``jax.vmap`` (over a learning
rate, a seed, data) and ``jax.grad`` (with respect to a hyperparameter).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optim._tree import PyTree, check_params, keystr, leaves_with_paths
from optim.base import apply_updates, as_transformation
from optim.grad import Partition, partition, trainable_value_and_grad


class FitResult(NamedTuple):
    """What ``fit`` returns: trained parameters, final optimizer state, per-step history."""

    params: PyTree
    opt_state: Any
    losses: jax.Array
    aux: Any = None


def num_examples(data: PyTree) -> int:
    """The shared leading size of every array in ``data``; ``ValueError`` naming any other."""
    sized = [(p, leaf) for p, leaf in leaves_with_paths(data) if leaf is not None]
    if not sized:
        raise ValueError("data must contain at least one array with a leading example axis")
    sizes = {}
    for path, leaf in sized:
        shape = np.shape(leaf)
        if not shape:
            raise ValueError(
                f"data{keystr(path)} is a scalar; every data leaf needs a leading example axis"
            )
        sizes.setdefault(shape[0], keystr(path))
    if len(sizes) > 1:
        listed = ", ".join(f"data{path} has {n}" for n, path in sizes.items())
        raise ValueError(f"data leaves must share their leading (example) size: {listed}")
    return next(iter(sizes))


def sample_batch(data: PyTree, key: jax.Array, batch_size: int) -> PyTree:
    """``batch_size`` examples of ``data`` drawn uniformly without replacement."""
    n = num_examples(data)
    if batch_size == n:
        return data
    index = jax.random.choice(key, n, (batch_size,), replace=False)
    return jax.tree.map(lambda x: x[index], data)


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a Python int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def fit(
    loss_fn: Callable[..., Any],
    params: PyTree,
    optimizer: Any,
    data: PyTree,
    *,
    steps: int,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    has_aux: bool = False,
) -> FitResult:
    """Train ``params`` for ``steps`` optimizer steps on ``data`` in one ``lax.scan``.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (``-> (scalar, aux)`` with ``has_aux``).
      params: any pytree; floating arrays are trained, other leaves are passed through.
      optimizer: a gradient transformation from ``optim`` or ``optax``.
      data: a pytree of arrays sharing a leading example axis; ``batch`` has its structure.
      steps: number of optimizer steps, at least 1.
      batch_size: examples per step, drawn at random; ``None`` uses all data every step.
      key: PRNG key for the minibatch draws; required when ``batch_size`` is set.
      has_aux: whether ``loss_fn`` returns ``(loss, aux)``; ``aux`` is stacked per step.

    Returns:
      ``FitResult(params, opt_state, losses, aux)``; ``losses[t]`` is the loss before step t.

    >>> import jax.numpy as jnp, optim
    >>> result = optim.fit(lambda w, b: jnp.mean((b - w) ** 2), jnp.zeros(()), optim.sgd(0.1),
    ...                    jnp.ones(8), steps=50)
    >>> round(float(result.params), 4)
    1.0
    """
    steps = _check_int(steps, "steps", 1)
    optimizer = as_transformation(optimizer, "optimizer")
    check_params(params)
    n = num_examples(data)
    if batch_size is not None:
        batch_size = _check_int(batch_size, "batch_size", 1)
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} is larger than the data ({n} examples)")
        if key is None:
            raise ValueError(
                "key is required when batch_size is set: minibatches are drawn "
                "at random, e.g. key=jax.random.PRNGKey(0)"
            )
    keys = None if key is None else jax.random.split(key, steps)

    split = partition(params)
    opt_state = optimizer.init(params)
    arrays, opt_state, losses, aux = _fit_scan(
        split.arrays,
        opt_state,
        optimizer,
        data,
        keys,
        loss_fn=loss_fn,
        treedef=split.treedef,
        constants=split.constants,
        steps=steps,
        batch_size=batch_size,
        has_aux=bool(has_aux),
    )
    return FitResult(split.combine(arrays), opt_state, losses, aux)


@functools.partial(
    jax.jit, static_argnames=("loss_fn", "treedef", "constants", "steps", "batch_size", "has_aux")
)
def _fit_scan(
    arrays,
    opt_state,
    optimizer,
    data,
    keys,
    *,
    loss_fn,
    treedef,
    constants,
    steps,
    batch_size,
    has_aux,
):
    """The compiled loop; the carry holds the parameters' arrays, constants are static."""

    def rebuild(values: list[Any]) -> PyTree:
        return Partition(values, treedef, constants).combine(values)

    def checked_loss(params: PyTree, batch: PyTree) -> tuple[jax.Array, Any]:
        out = loss_fn(params, batch)
        loss = out[0] if has_aux else out
        if jnp.shape(loss) != ():
            raise ValueError(
                f"loss_fn must return a scalar loss, got shape {jnp.shape(loss)}"
                + ("" if has_aux else " (use has_aux=True to return (loss, aux))")
            )
        return out if has_aux else (out, None)

    grad_fn = trainable_value_and_grad(checked_loss, has_aux=True)

    def step(carry, step_key):
        values, state = carry
        params = rebuild(values)
        batch = data if batch_size is None else sample_batch(data, step_key, batch_size)
        (loss, aux), grads = grad_fn(params, batch)
        updates, state = optimizer.update(grads, state, params, value=loss)
        return (partition(apply_updates(params, updates)).arrays, state), (loss, aux)

    (arrays, opt_state), (losses, aux) = jax.lax.scan(step, (arrays, opt_state), keys, length=steps)
    return arrays, opt_state, losses, aux
