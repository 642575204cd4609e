"""Differentiable approximations of functions by random perturbations of their input
(``optax.perturbations``): ``make_perturbed_fun`` and the noise distributions it draws from."""

from optim.perturbations._noise import Gumbel, Normal
from optim.perturbations._perturbed import make_perturbed_fun

__all__ = ["Gumbel", "Normal", "make_perturbed_fun"]
