"""Models as pytrees, losses and small datasets for trying out ``optim``.

A model is a frozen dataclass registered as a pytree: its arrays are the leaves, its
configuration (such as an activation function) is static metadata. ``Model.init(key, ...)``
builds one and ``model(x)`` applies it, so a model is directly the ``params`` of an optimizer::

    model = models.MLP.init(jax.random.PRNGKey(0), [64, 128, 10])
    loss, grads = models.value_and_grad(loss_fn)(model, batch)   # grads: an MLP of gradients
"""

from models import datasets, losses, text
from models.linear import Linear, LinearRegression, LogisticRegression
from models.mlp import MLP
from models.transformer import Transformer, generate, lm_loss, perplexity
from optim.grad import value_and_grad

__all__ = [
    "MLP",
    "Linear",
    "LinearRegression",
    "LogisticRegression",
    "datasets",
    "losses",
    "value_and_grad",
    "Transformer",
    "generate",
    "lm_loss",
    "perplexity",
    "text",
]
