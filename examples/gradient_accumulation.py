"""optax's "Gradient Accumulation" example: ``optax.MultiSteps`` accumulating the gradients of
three mini-batches gives the step SGD takes on the whole batch, with a constant learning rate
and with a ``piecewise_constant_schedule``; a flax NNX MLP trained through ``nnx.Optimizer``.

Source: examples/gradient_accumulation.ipynb of https://github.com/google-deepmind/optax
(commit 2edbcbe2, August 2026; Apache License 2.0), code cells 2-16, as written (reformatted).

Changed: the data was generated already (uniform random images); the one change is the train
step's ``@jax.jit``, now ``@nnx.jit``: under ``jax.jit`` the in-place updates that
``nnx.Optimizer.update`` makes to the model and to its own state are made on traced copies and
lost (flax 0.12.8: the notebook's models do not change at all), ``nnx.jit`` carries them back.
The notebook's own check compares what ``fit`` returns, which is None, so it passes whatever
the optimizer did. Added: after each ``fit``, ``_support.record`` of the trained model's loss
on all nine examples, so that a test can compare the optimizer's effect (one step lowers the
loss by 6e-4 relative: a step 10% off changes that loss by 6e-5 relative).
"""

# ruff: noqa: B905, I001, UP035 - the published code as written: its imports, its style

import _support

# ---- cell 2
from typing import Iterable

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax


# ---- cell 4
class MLP(nnx.Module):
    """A simple multilayer perceptron model using flax.nnx."""

    def __init__(self, rngs: nnx.Rngs):
        self.linear1 = nnx.Linear(28 * 28, 512, rngs=rngs)
        self.linear2 = nnx.Linear(512, 512, rngs=rngs)
        self.linear3 = nnx.Linear(512, 10, rngs=rngs)

    def __call__(self, x):
        # Flattens inputs in the batch.
        x = x.reshape((x.shape[0], -1))
        x = self.linear1(x)
        x = jax.nn.relu(x)
        x = self.linear2(x)
        x = jax.nn.relu(x)
        x = self.linear3(x)
        return x


def loss_fn(model, batch):
    """Computes loss over a mini-batch."""
    logits = model(batch["image"])
    loss = optax.softmax_cross_entropy_with_integer_labels(
        logits=logits, labels=batch["label"]
    ).mean()
    return loss


# ---- cell 6
def build_train_step():
    """Builds a function for executing a single step in the optimization."""

    @nnx.jit  # changed: @jax.jit in the notebook, under which the updates are lost
    def update(model, optimizer, batch):
        grads = nnx.grad(loss_fn)(model, batch)
        optimizer.update(model, grads)

    return update


def fit(
    model: nnx.Module,
    optimizer: nnx.Optimizer,
    batches: Iterable[dict[str, jnp.ndarray]],
):
    """Executes a train loop over the train batches using the given optimizer."""

    train_step = build_train_step()

    for batch in batches:
        train_step(model, optimizer, batch)


# ---- cell 8
EXAMPLES = jax.random.uniform(jax.random.PRNGKey(0), (9, 28, 28, 1))
LABELS = jax.random.randint(jax.random.PRNGKey(0), (9,), minval=0, maxval=10)

optimizer = optax.sgd(1e-4)


# added: a trained model's loss on all nine examples (2.3029 before training)
def full_batch_loss(model):
    return loss_fn(model, dict(image=EXAMPLES, label=LABELS))


# ---- cell 10
model_single_batch = MLP(nnx.Rngs(0))
opt_single_batch = nnx.Optimizer(model_single_batch, optimizer, wrt=nnx.Param)

new_params_single_batch = fit(
    model_single_batch,
    opt_single_batch,
    batches=[
        dict(image=EXAMPLES, label=LABELS),
    ],
)
_support.record("sgd_single_batch_loss", [full_batch_loss(model_single_batch)])  # added

# ---- cell 12
model_gradient_accumulation = MLP(nnx.Rngs(0))
opt_gradient_accumulation = nnx.Optimizer(
    model_gradient_accumulation, optax.MultiSteps(optimizer, every_k_schedule=3), wrt=nnx.Param
)

new_params_gradient_accumulation = fit(
    model_gradient_accumulation,
    opt_gradient_accumulation,
    batches=[
        dict(image=EXAMPLES[0:3], label=LABELS[0:3]),
        dict(image=EXAMPLES[3:6], label=LABELS[3:6]),
        dict(image=EXAMPLES[6:9], label=LABELS[6:9]),
    ],
)
_support.record(  # added
    "sgd_multisteps_loss", [full_batch_loss(model_gradient_accumulation)]
)


# ---- cell 14
def assert_trees_all_close(a, b):
    """Asserts that two pytrees of arrays are close within a tolerance."""
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(x, y, atol=1e-7)


assert_trees_all_close(
    new_params_single_batch,
    new_params_gradient_accumulation,
)

# ---- cell 16
learning_rate_schedule = optax.piecewise_constant_schedule(
    init_value=1.0,
    boundaries_and_scales={
        0: 1e-4,
        1: 1e-1,
    },
)

optimizer = optax.sgd(learning_rate_schedule)

model_single_batch = MLP(nnx.Rngs(0))
opt_single_batch = nnx.Optimizer(model_single_batch, optimizer, wrt=nnx.Param)

new_params_single_batch = fit(
    model_single_batch,
    opt_single_batch,
    batches=[
        dict(image=EXAMPLES, label=LABELS),
    ],
)
_support.record(  # added
    "schedule_single_batch_loss", [full_batch_loss(model_single_batch)]
)

model_gradient_accumulation = MLP(nnx.Rngs(0))
opt_gradient_accumulation = nnx.Optimizer(
    model_gradient_accumulation, optax.MultiSteps(optimizer, every_k_schedule=3), wrt=nnx.Param
)

new_params_gradient_accumulation = fit(
    model_gradient_accumulation,
    opt_gradient_accumulation,
    batches=[
        dict(image=EXAMPLES[0:3], label=LABELS[0:3]),
        dict(image=EXAMPLES[3:6], label=LABELS[3:6]),
        dict(image=EXAMPLES[6:9], label=LABELS[6:9]),
    ],
)
_support.record(  # added
    "schedule_multisteps_loss", [full_batch_loss(model_gradient_accumulation)]
)

assert_trees_all_close(
    new_params_single_batch,
    new_params_gradient_accumulation,
)
