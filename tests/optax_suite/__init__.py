"""optax's own test suite, run against optim (see runner.py and results/README.md).

``python -m tests.optax_suite [modules...]`` prints, per optax test module, how many tests pass
on optax and on optim and how many of optax's private names still fell back to optax.
"""
