"""optim's command line: ``python -m optim`` runs the optimizer comparison of ``optim.cli.demo``.

Apart from the library: ``import optim`` does not import it, and it is the one place where
``optim`` imports ``models`` (the demo's problems and datasets).
"""

from optim.cli.demo import main

__all__ = ["main"]
