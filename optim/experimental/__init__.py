"""Experimental features (``optax.experimental``): ``aggregating``, transformations of
per-element gradients. Their interfaces may change as optax's do."""

from optim.experimental import aggregating

__all__ = ["aggregating"]
