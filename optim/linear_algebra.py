"""Linear algebra for optimizers: a tree's norm, dominant eigenpairs, inverse matrix roots and
non-negative least squares.

The public functions of optax's ``linear_algebra`` module, with its names, arguments and
values: ``global_norm``, ``power_iteration``, ``matrix_inverse_pth_root`` (Shampoo's
preconditioner) and ``nnls``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optim._hyper import check_int
from optim._keywords import suggest_keywords
from optim._tree import PyTree, map_arrays, tree_sq_norm, tree_vdot
from optim._tree import global_norm as _global_norm
from optim._warnings import warn_user

__all__ = ["global_norm", "matrix_inverse_pth_root", "nnls", "power_iteration"]

_HIGHEST = jax.lax.Precision.HIGHEST


@suggest_keywords
def global_norm(updates: PyTree) -> jax.Array:
    r"""The Euclidean norm of all the arrays of a tree together: :math:`\sqrt{\sum_i |x_i|^2}`.

    Deprecated, as in optax (in favour of ``optax.tree.norm``): it warns with a
    ``DeprecationWarning``. ``clip_by_global_norm`` and the other optimizers compute the same
    norm without warning.

    Args:
      updates: a tree of floating arrays; ``None`` leaves count for nothing.

    Returns:
      The norm, a float32 scalar (wider for wider leaves): the same value as optax's for
      float32 leaves; bf16 and float16 leaves are summed in float32 (optax sums them in their
      own dtype).

    Raises:
      TypeError: a leaf is an integer or boolean array.

    Examples:
      >>> import warnings
      >>> import jax.numpy as jnp
      >>> import optim
      >>> with warnings.catch_warnings():
      ...     warnings.simplefilter("ignore", DeprecationWarning)
      ...     print(optim.global_norm({"a": jnp.array([3.0]), "b": jnp.array([4.0])}))
      5.0
    """
    warn_user(
        "optim.global_norm is deprecated, as optax.global_norm is, in favour of the tree norm "
        "(optax.tree.norm)",
        DeprecationWarning,
    )
    return _global_norm(updates)


# --- power iteration ----------------------------------------------------------------------


def _tree_norm(tree: PyTree) -> jax.Array:
    return jnp.sqrt(tree_sq_norm(tree))


def _normalized(tree: PyTree) -> PyTree:
    """``tree / ||tree||``, computed as optax does: the reciprocal times each leaf."""
    inverse = 1.0 / _tree_norm(tree)
    return map_arrays(lambda x: inverse * x, tree)


def _minus_scaled(a: PyTree, scale: jax.Array, b: PyTree) -> PyTree:
    return map_arrays(lambda x, y: x - scale * y, a, b)


def _check_tree_of_floats(tree: PyTree, name: str) -> None:
    """``TypeError`` unless ``tree`` is a floating array or a non-empty tree of them."""
    leaves = jax.tree.leaves(tree)
    kinds = [str(getattr(x, "dtype", type(x).__name__)) for x in leaves]
    if not leaves or not all(
        hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact) for x in leaves
    ):
        raise TypeError(
            f"{name} must be a floating array or a tree of floating arrays, got "
            f"{type(tree).__name__} with leaves of types {kinds}"
        )


@suggest_keywords
def power_iteration(
    matrix: Any,
    *,
    v0: PyTree | None = None,
    num_iters: Any = 100,
    error_tolerance: Any = 1e-6,
    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST,
    key: jax.Array | None = None,
) -> tuple[jax.Array, PyTree]:
    r"""The dominant eigenvalue of a diagonalizable matrix and its eigenvector, by power
    iteration.

    From a unit vector :math:`v_0`, repeat :math:`z_k = A v_{k-1}`, :math:`v_k = z_k /
    \lVert z_k\rVert`, :math:`\lambda_k = \langle v_{k-1}, z_k\rangle` (each step takes the
    eigenvalue estimate before normalizing, as optax does) until
    :math:`\lVert z_k - \lambda_k v_{k-1}\rVert < \text{tol}\cdot|\lambda_k|` or ``num_iters``
    steps. ``matrix`` is an array or a function computing the product :math:`A v` of a tree
    :math:`v` (a Hessian-vector product, say).

    Args:
      matrix: a square matrix (an array of shape ``(n, n)``) or a callable computing the
        matrix-vector product of a tree.
      v0: the initial vector: a vector of shape ``(n,)`` for an array ``matrix``, a tree of
        the callable's input structure otherwise (then required). Default for an array: drawn
        uniformly from :math:`[-1, 1]^n` with ``key``.
      num_iters: the largest number of iterations.
      error_tolerance: the relative error of the eigenvalue at which to stop.
      precision: the precision of the products with an array ``matrix``.
      key: the random key drawing ``v0`` when it is not given; ``jax.random.PRNGKey(0)``
        when None.

    Returns:
      ``(eigenvalue, eigenvector)``, the eigenvector a unit vector (tree) of ``v0``'s
      structure.

    Raises:
      ValueError: ``matrix`` is a callable and ``v0`` is None; ``matrix`` is not a square
        matrix.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> value, vector = optim.power_iteration(jnp.diag(jnp.array([1.0, 3.0, 2.0])))
      >>> print(f"{value:.4f}")
      3.0000

    References:
      Wikipedia, `Power iteration <https://en.wikipedia.org/wiki/Power_iteration>`_.
    """
    if callable(matrix):
        product = matrix
        if v0 is None:
            raise ValueError(
                "v0 must be given when matrix is a callable: the structure of the vectors it "
                "multiplies is not known otherwise"
            )
    else:
        matrix = jnp.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(
                f"matrix must be a square matrix (n, n) or a callable, got shape {matrix.shape}"
            )

        def product(v: jax.Array) -> jax.Array:
            return jnp.matmul(matrix, v, precision=precision)

        if v0 is None:
            key = jax.random.PRNGKey(0) if key is None else key
            v0 = jax.random.uniform(
                key, shape=matrix.shape[-1:], dtype=matrix.dtype, minval=-1.0, maxval=1.0
            )
    _check_tree_of_floats(v0, "v0")
    v0 = _normalized(v0)

    def not_converged(carry: tuple) -> jax.Array:
        vector, image, value, step = carry
        residual = _tree_norm(_minus_scaled(image, value, vector))
        converged = jnp.abs(residual / value) < error_tolerance
        return ~converged & (step < num_iters)

    def iterate(carry: tuple) -> tuple:
        _, image, _, step = carry
        vector = _normalized(image)
        image = product(vector)
        return vector, image, tree_vdot(vector, image), step + 1

    image0 = product(v0)
    value0 = jnp.zeros_like(tree_vdot(v0, image0))
    _, image, value, _ = jax.lax.while_loop(
        not_converged, iterate, (v0, image0, value0, jnp.zeros([], jnp.int32))
    )
    return value, _normalized(image)


# --- inverse p-th root --------------------------------------------------------------------


def _positive_integer(p: Any) -> int | None:
    """``p`` as a Python int when it is a concrete positive integer (2.0 counts); None when it
    is traced. ``ValueError`` otherwise."""
    if isinstance(p, jax.core.Tracer):
        return None
    value = np.asarray(p)
    if value.dtype.kind not in "iuf" or isinstance(p, (bool, np.bool_)):
        raise TypeError(f"p must be a positive integer, got {type(p).__name__} {p!r}")
    if value.shape != () or not float(value).is_integer() or value < 1:
        raise ValueError(f"p must be a positive integer, got {p!r}")
    return int(value)


def _matrix_power(m: jax.Array, p: Any, precision: Any) -> jax.Array:
    r""":math:`M^p` by repeated squaring: :math:`M^2 = M M`, :math:`M^4 = M^2 M^2`, ... (for
    ``p`` = 1, 2, 4, 8 the products optax's unrolled powers compute, in the same order)."""
    exponent = _positive_integer(p)
    if exponent is not None:
        result, square = None, m
        while True:
            if exponent & 1:
                result = (
                    square if result is None else jnp.matmul(result, square, precision=precision)
                )
            exponent >>= 1
            if not exponent:
                return result
            square = jnp.matmul(square, square, precision=precision)

    # A traced p: the same products in a loop, starting from the identity (exact with the
    # highest precision; one product more).
    def multiply(carry: tuple) -> tuple:
        result, square, exponent = carry
        odd = (exponent & 1) == 1
        result = jnp.where(odd, jnp.matmul(result, square, precision=precision), result)
        return result, jnp.matmul(square, square, precision=precision), exponent >> 1

    exponent = jnp.asarray(jnp.round(p), jnp.int32)
    identity = jnp.eye(m.shape[0], dtype=m.dtype)
    result, _, _ = jax.lax.while_loop(lambda c: c[2] > 0, multiply, (identity, m, exponent))
    return result


@suggest_keywords
def matrix_inverse_pth_root(
    matrix: Any,
    p: Any,
    num_iters: Any = 100,
    ridge_epsilon: Any = 1e-6,
    error_tolerance: Any = 1e-6,
    precision: jax.lax.Precision = jax.lax.Precision.HIGHEST,
) -> tuple[jax.Array, Any]:
    r""":math:`A^{-1/p}` of a symmetric positive semi-definite matrix, by coupled Newton
    iterations (Higham, 2008, "Functions of Matrices", eq. 7.18); Shampoo's preconditioner.

    With :math:`\alpha = -1/p`, :math:`A_\epsilon = A + \epsilon \lambda_{max} I`
    (:math:`\epsilon` = ``ridge_epsilon``, :math:`\lambda_{max}` from ``power_iteration``) and
    :math:`z = (1 + p) / (2\lVert A_\epsilon\rVert_F)`, start from :math:`M_0 = z A_\epsilon`,
    :math:`H_0 = z^{1/p} I` and repeat

    .. math::
        T_k = (1-\alpha) I + \alpha M_k,\quad M_{k+1} = T_k^p M_k,\quad H_{k+1} = H_k T_k

    while :math:`\max|M_k - I|` > ``error_tolerance`` and it decreases (a rise of up to 20%
    is allowed), at most ``num_iters`` times; :math:`H` tends to :math:`A_\epsilon^{-1/p}`.
    A 1x1 matrix is computed directly.

    optax computes :math:`T_k^p` only for p = 1, 2, 4, 8 (it uses the power of two nearest
    :math:`p`, e.g. :math:`T^4` for p = 3, so its result for other p is not
    :math:`A^{-1/p}`); here any positive integer p gets :math:`T_k^p`, the same products for
    p = 1, 2, 4, 8.

    Args:
      matrix: a symmetric positive semi-definite matrix of shape ``(n, n)``.
      p: the root, a positive integer.
      num_iters: the largest number of iterations.
      ridge_epsilon: the ridge added, relative to the largest eigenvalue, to make the matrix
        positive definite.
      error_tolerance: the error :math:`\max|M_k - I|` at which to stop.
      precision: the precision of the matrix products.

    Returns:
      ``(root, error)``: :math:`A_\epsilon^{-1/p}` in ``matrix``'s dtype and the final
      :math:`\max|M - I|` (0 for a 1x1 matrix).

    Raises:
      ValueError: ``matrix`` is not square; ``p`` is not a positive integer.
      TypeError: ``p`` is not a number (or is a bool).

    Examples:
      >>> import jax.numpy as jnp
      >>> import optim
      >>> root, error = optim.matrix_inverse_pth_root(jnp.diag(jnp.array([4.0, 16.0])), 2)
      >>> print(jnp.round(jnp.diag(root), 4))
      [0.5  0.25]
    """
    matrix = jnp.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be a square matrix (n, n), got shape {matrix.shape}")
    _positive_integer(p)  # validates a concrete p
    size = matrix.shape[0]
    # float32 arithmetic, as optax (float64 hardware is rare).
    alpha = jnp.asarray(-1.0 / p, jnp.float32)
    identity = jnp.eye(size, dtype=jnp.float32)
    largest, _ = power_iteration(matrix, num_iters=100, error_tolerance=1e-6, precision=precision)
    ridge = ridge_epsilon * jnp.maximum(largest, 1e-16)
    if size == 1:
        return (matrix + ridge) ** alpha, 0

    def keep_going(carry: tuple) -> jax.Array:
        step, _, _, _, error, improving = carry
        return (step < num_iters) & (error > error_tolerance) & improving

    def newton_step(carry: tuple) -> tuple:
        step, m, h, _, error, _ = carry
        t = (1 - alpha) * identity + alpha * m
        new_m = jnp.matmul(_matrix_power(t, p, precision), m, precision=precision)
        new_h = jnp.matmul(h, t, precision=precision)
        new_error = jnp.max(jnp.abs(new_m - identity))
        # The error may rise for a step before it falls: up to 20% is allowed.
        return step + 1, new_m, new_h, h, new_error, new_error < error * 1.2

    damped = matrix + ridge * identity
    z = (1 + p) / (2 * jnp.linalg.norm(damped))
    m0 = damped * z
    h0 = identity * jnp.power(z, 1.0 / p)
    start = (0, m0, h0, h0, jnp.max(jnp.abs(m0 - identity)), True)
    _, m, h, previous_h, _, improving = jax.lax.while_loop(keep_going, newton_step, start)
    error = jnp.max(jnp.abs(m - identity))
    # Stopped because the error rose: the previous iterate is the better one.
    converged = jnp.asarray(improving, previous_h.dtype)
    root = converged * h + (1 - converged) * previous_h
    return jnp.asarray(root, matrix.dtype), error


# --- non-negative least squares -----------------------------------------------------------


def _spectral_radius_bound(q: jax.Array) -> jax.Array:
    """An upper bound of the spectral radius of ``q``: the smaller of its Frobenius and 1-norms."""
    frobenius = jnp.linalg.matrix_norm(q, ord="fro")
    one_norm = jnp.linalg.matrix_norm(q, ord=1) if q.size else 0
    return jnp.minimum(frobenius, one_norm)


@suggest_keywords
def nnls(
    A: jax.Array,
    b: jax.Array,
    iters: int,
    unroll: int | bool = 1,
    L: Any = None,
) -> jax.Array:
    r"""Non-negative least squares: :math:`\min_{x \ge 0} \lVert A x - b\rVert_2`.

    The fast projected gradient method (Polyak, 2015): with :math:`Q = A^\top A`,
    :math:`q = A^\top b` and :math:`L \ge \rho(Q)`, starting from :math:`x_0 = p_0 = 0`,
    :math:`c_0 = 0`,

    .. math::
        c_{k+1} = \tfrac{1 + \sqrt{1 + 4 c_k^2}}{2},\quad
        x_{k+1} = \max\big(p_k - (Q p_k - q)/L,\ 0\big),\quad
        p_{k+1} = x_{k+1} + \tfrac{c_k - 1}{c_{k+1}} (x_{k+1} - x_k).

    Args:
      A: a matrix of shape ``(M, N)``.
      b: a vector of shape ``(M,)``, or a matrix of shape ``(M, K)`` (K problems at once).
      iters: the number of iterations (a static int).
      unroll: passed to ``lax.scan``.
      L: an upper bound of the spectral radius of :math:`A^\top A`; default: the smaller of
        its Frobenius norm and 1-norm.

    Returns:
      The solution, of shape ``(N,)`` or ``(N, K)``.

    Raises:
      ValueError: the shapes of ``A`` and ``b`` do not fit; ``iters`` is not an int >= 0.

    Examples:
      >>> from jax import numpy as jnp
      >>> import optim
      >>> A = jnp.array([[1., 2.], [3., 4.]])
      >>> b = jnp.array([5., 6.])
      >>> x = optim.nnls(A, b, 10**3)
      >>> print(f"{x[0]:.2f} {x[1]:.2f}")
      0.00 1.70

    References:
      Roman A. Polyak, `Projected gradient method for non-negative least square
      <http://www.ams.org/books/conm/636/>`_, 2015.
    """
    A, b = jnp.asarray(A), jnp.asarray(b)
    if A.ndim != 2:
        raise ValueError(f"A must be a matrix (M, N), got shape {A.shape}")
    if b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(
            f"b must have shape (M,) or (M, K) with M = {A.shape[0]} (A's rows), got shape "
            f"{b.shape}"
        )
    steps = check_int(iters, "iters", low=0)
    q_matrix = A.mT @ A
    q = A.mT @ b
    if L is None:
        L = _spectral_radius_bound(q_matrix)
    L = jnp.where(L == 0, 1, L)  # a zero matrix: any step works; avoid 0/0

    def step(carry: tuple, _: Any) -> tuple:
        x, p, c = carry
        c_next = (1 + jnp.sqrt(1 + 4 * c**2)) / 2
        momentum = (c - 1) / c_next
        x_next = (p - (q_matrix @ p - q) / L).clip(0)
        return (x_next, x_next + momentum * (x_next - x), c_next), None

    x0 = jnp.zeros_like(b, shape=A.shape[-1:] + b.shape[1:])
    (x, _, _), _ = jax.lax.scan(step, (x0, x0, 0.0), length=steps, unroll=unroll)
    return x
