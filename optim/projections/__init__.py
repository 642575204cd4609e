r"""Euclidean projections onto convex sets, for pytrees (``optax.projections``).

Each ``projection_*`` maps a tree ``x`` to the closest point of a set,
:math:`\operatorname{argmin}_{p \in C} \|x - p\|_2^2`, with all leaves taken together as
one vector. Use them for projected gradient descent: project the parameters after each
``apply_updates``.
"""

from optim.projections._affine import (
    projection_halfspace,
    projection_hyperplane,
    projection_vector,
)
from optim.projections._box import (
    projection_box,
    projection_hypercube,
    projection_linf_ball,
    projection_non_negative,
)
from optim.projections._l2 import projection_l2_ball, projection_l2_sphere
from optim.projections._simplex import (
    projection_l1_ball,
    projection_l1_sphere,
    projection_simplex,
)

__all__ = [
    "projection_box",
    "projection_halfspace",
    "projection_hypercube",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_non_negative",
    "projection_simplex",
    "projection_vector",
]
