"""``python -m optim``: the seed document's optimizer comparison (see ``optim.demo``)."""

from optim.demo import main

if __name__ == "__main__":
    main()
