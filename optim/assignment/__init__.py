r"""The linear assignment problem (``optax.assignment``): match the rows and columns of a cost
matrix one to one, :math:`\min(n, m)` pairs, at the least total cost."""

from optim.assignment._potentials import hungarian_algorithm
from optim.assignment._shortest_path import base_hungarian_algorithm

__all__ = ["base_hungarian_algorithm", "hungarian_algorithm"]
