"""``python -m optim``: the GD / SGD / Adam comparison of ``optim.cli.demo``."""

from optim.cli import main

if __name__ == "__main__":
    main()
