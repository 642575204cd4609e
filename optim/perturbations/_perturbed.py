"""A differentiable Monte-Carlo approximation of any function, by random perturbations of its
input (Berthet et al., 2020) and the score-function estimator written as a magic box."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from optim import tree as optim_tree
from optim._hyper import check_int
from optim._keywords import suggest_keywords
from optim._tree import PyTree
from optim.perturbations._noise import Gumbel


def _magic_box(x: jax.Array) -> jax.Array:
    r""":math:`e^{x - \bot(x)}`: 1 in value, with the derivatives of :math:`e^x` (Foerster et
    al., 2018), so that derivatives of any order of :math:`\square(\log p) f` are score-function
    estimates."""
    return jnp.exp(x - jax.lax.stop_gradient(x))


def _check_arguments(fun: Any, num_samples: Any, noise: Any) -> None:
    if not callable(fun):
        raise TypeError(f"fun must be a function of a pytree, got {type(fun).__name__}")
    check_int(num_samples, "num_samples", low=1)
    for method in ("sample", "log_prob"):
        if not callable(getattr(noise, method, None)):
            raise TypeError(
                f"noise must have sample and log_prob methods (like Gumbel() or Normal()); "
                f"{type(noise).__name__} has no {method}"
            )


@suggest_keywords
def make_perturbed_fun(
    fun: Callable[[Any], Any],
    num_samples: int = 1000,
    sigma: jax.typing.ArrayLike = 0.1,
    noise: Any = Gumbel(),  # noqa: B008 - stateless, shared as optax's default is
    use_baseline: bool = True,
) -> Callable[[jax.Array, Any], Any]:
    r"""Returns a differentiable approximation of a function, using stochastic perturbations.

    Let :math:`f` be a function, :math:`\sigma` a scalar, :math:`\mu` a noise distribution,
    and

    .. math::
      f_\sigma(x) = \mathbb{E}_{z \sim \mu} f(x + \sigma z).

    For suitable :math:`\mu`, :math:`f_\sigma` is a smooth approximation of :math:`f`, even
    where :math:`f` is not differentiable. The returned function takes a PRNG key and
    :math:`x`, and returns a Monte-Carlo estimate over ``num_samples`` draws
    :math:`z_1, \dots, z_n`; its derivatives of any order (through JAX's automatic
    differentiation) are unbiased estimates of those of :math:`f_\sigma`. Only values of
    :math:`f` are used: each term is :math:`\square(\log \mu(z_i)) f(y_i)` with
    :math:`y_i = \bot(x + \sigma z_i)` and :math:`\square` the magic box
    :math:`e^{u - \bot(u)}` (value 1, derivative that of :math:`e^u`), which gives the score
    function (REINFORCE) estimator of the gradient. With ``use_baseline``,
    :math:`(1 - \square(\cdot)) f(x)` is added to each term: it has value 0, and lowers the
    variance of the derivatives.

    Args:
      fun: The function to transform into a differentiable function, from pytree to pytree
        whose leaves are JAX arrays.
      num_samples: an int, the number of perturbed outputs to average over.
      sigma: a float, the scale of the random perturbation.
      noise: a distribution object that implements ``sample`` and ``log_prob`` methods,
        like :class:`Gumbel` (which is the default) or :class:`Normal`.
      use_baseline: Use the value of the function at the unperturbed input as a baseline for
        variance reduction.

    Returns:
      A new function with the same signature as the original function, but with a leading
      random PRNG key argument. For a given key it draws the same noise as
      ``optax.perturbations.make_perturbed_fun``.

    Raises:
      TypeError: ``fun`` is not callable, ``num_samples`` is not an int, or ``noise`` lacks
        ``sample`` or ``log_prob``.
      ValueError: ``num_samples`` is less than 1.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from optim.perturbations import make_perturbed_fun
      >>> key = jax.random.key(0)
      >>> x = jnp.array([0.0, 0.0, 0.0])
      >>> f = lambda x: jnp.sum(jnp.maximum(x, 0.0))
      >>> fn = make_perturbed_fun(f, 1_000, 0.1)
      >>> with jnp.printoptions(precision=2):
      ...   print(jax.grad(fn, argnums=1)(key, x))
      [0.69 0.72 0.58]

    References:
      Berthet et al., `Learning with Differentiable Perturbed Optimizers
      <https://arxiv.org/abs/2002.08676>`_, 2020

      Foerster et al., `DiCE: The Infinitely Differentiable Monte Carlo Estimator
      <https://arxiv.org/abs/1802.05098>`_, 2018
    """
    _check_arguments(fun, num_samples, noise)

    def one_term(key: jax.Array, x: PyTree, baseline: PyTree) -> PyTree:
        z = optim_tree.random_like(key, x, noise.sample)
        perturbed = jax.lax.stop_gradient(jax.tree.map(lambda xi, zi: xi + sigma * zi, x, z))
        # z again, now as a function of x: its log-density carries the score x -> log mu.
        z = jax.tree.map(lambda xi, yi: (yi - xi) / sigma, x, perturbed)
        box = _magic_box(optim_tree.sum(jax.tree.map(noise.log_prob, z)))
        term = optim_tree.scale(box, fun(perturbed))
        if use_baseline:
            term = optim_tree.add_scale(term, 1 - box, baseline)
        return term

    def perturbed_fun(key: jax.Array, x: Any) -> Any:
        baseline = fun(jax.lax.stop_gradient(x)) if use_baseline else None
        terms = jax.vmap(one_term, in_axes=(0, None, None))(
            jax.random.split(key, num_samples), x, baseline
        )
        return jax.tree.map(lambda t: jnp.mean(t, axis=0), terms)

    return perturbed_fun
