"""optax's "Reduce on Plateau Learning Rate Scheduler" example: a flax linen MLP trained with
``optax.chain(optax.adam(...), contrib.reduce_on_plateau(...))`` fed the training loss, then
with Adam whose updates are scaled by a separately updated ``reduce_on_plateau`` fed the test
loss; the scale is read back with ``optax.tree.get`` and applied with ``optax.tree.scale``.

Source: examples/contrib/reduce_on_plateau.ipynb of https://github.com/google-deepmind/optax
(commit 2edbcbe2, August 2026; Apache License 2.0), code cells 1-29, as written
(reformatted).

Changed (data, length and the plateau hyperparameters that depend on them):
- Fashion-MNIST from tensorflow_datasets through a grain pipeline -> scikit-learn's digits as
  28x28 MNIST-like images (``_support.mnist_like_digits``), batched as the grain pipeline does
  (training set shuffled with seed 45, ``image / 255.``, remainder dropped); of them, the first
  256 training images: 2 steps per epoch;
- 20 epochs instead of 50; a patience of 2 epochs instead of 5, and in the first part an
  accumulation of 4 steps instead of 200, so that the plateau logic acts in so short a run
  (in the first part the training loss keeps falling and the scale stays 1; in the second the
  test loss stalls and the scale falls to 1/16);
- left out: the plots (cells 20-21 and 30, matplotlib) and the print of the device;
- added: ``_support.record`` of the per-step training losses, the test losses and the
  learning-rate scales of both parts.
"""

# ruff: noqa: B018, E501, I001, RUF005, UP035 - the published code as written: its imports, its style

import _support

# ---- cell 1
from typing import Sequence
from flax import linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import optax
import optax.tree
from optax import contrib

# ---- cell 4
# @markdown Number of samples in each batch:
BATCH_SIZE = 128  # @param{type:"integer"}

# ---- cell 5 (changed: the data)
train_source, test_source = _support.mnist_like_digits()

train_loader_batched = _support.batched(
    train_source,
    BATCH_SIZE,
    shuffle_seed=45,
    map_fn=lambda x: (x["image"] / 255.0, x["label"]),
    limit=256,
)
test_loader_batched = _support.batched(
    test_source, BATCH_SIZE, map_fn=lambda x: (x["image"] / 255.0, x["label"])
)

IMG_SIZE = train_source["image"].shape[1:]
NUM_CLASSES = 10


# ---- cell 7
class MLP(nn.Module):
    """A simple multilayer perceptron model for image classification."""

    hidden_sizes: Sequence[int] = (1000, 1000)

    @nn.compact
    def __call__(self, x):
        # Flattens images in the batch.
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(features=self.hidden_sizes[0])(x)
        x = nn.relu(x)
        x = nn.Dense(features=self.hidden_sizes[1])(x)
        x = nn.relu(x)
        x = nn.Dense(features=NUM_CLASSES)(x)
        return x


# ---- cell 8
net = MLP()


@jax.jit
def loss_accuracy(params, data):
    """Computes loss and accuracy over a mini-batch.

    Args:
      params: parameters of the model.
      data: tuple of (inputs, labels).

    Returns:
      loss: float
    """
    inputs, labels = data
    logits = net.apply({"params": params}, inputs)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits=logits, labels=labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == labels)
    return loss, {"accuracy": accuracy}


# ---- cell 10
rng = jax.random.PRNGKey(0)
fake_data = jnp.ones((1,) + IMG_SIZE, dtype=jnp.float32)
init_params = net.init({"params": rng}, fake_data)["params"]


def dataset_stats(params, data_loader):
    """Computes loss and accuracy over the dataset `data_loader`."""
    all_accuracy = []
    all_loss = []
    for batch in data_loader:
        batch_loss, batch_aux = loss_accuracy(params, batch)
        all_loss.append(batch_loss)
        all_accuracy.append(batch_aux["accuracy"])
    return {"loss": np.mean(all_loss), "accuracy": np.mean(all_accuracy)}


# ---- cell 13
# @markdown Total number of epochs to train for:
N_EPOCHS = 20  # @param{type:"integer"}  # changed: 50 in the notebook
# @markdown The base learning rate for the optimizer:
LEARNING_RATE = 0.01  # @param{type:"number"}

# ---- cell 15
# @markdown Number of epochs with no improvement after which learning rate will be reduced:
PATIENCE = 2  # @param{type:"integer"}  # changed: 5 in the notebook
# @markdown Number of epochs to wait before resuming normal operation after the learning rate reduction:
COOLDOWN = 0  # @param{type:"integer"}
# @markdown Factor by which to reduce the learning rate:
FACTOR = 0.5  # @param{type:"number"}
# @markdown Relative tolerance for measuring the new optimum:
RTOL = 1e-4  # @param{type:"number"}
# @markdown Number of iterations to accumulate an average value:
ACCUMULATION_SIZE = 4  # changed: 200 in the notebook

# ---- cell 17
opt = optax.chain(
    optax.adam(LEARNING_RATE),
    contrib.reduce_on_plateau(
        patience=PATIENCE,
        cooldown=COOLDOWN,
        factor=FACTOR,
        rtol=RTOL,
        accumulation_size=ACCUMULATION_SIZE,
    ),
)
opt_state = opt.init(init_params)


# ---- cell 19
@jax.jit
def train_step(params, opt_state, batch):
    """Performs a one step update."""
    (value, aux), grad = jax.value_and_grad(loss_accuracy, has_aux=True)(params, batch)
    updates, opt_state = opt.update(grad, opt_state, params, value=value)
    params = optax.apply_updates(params, updates)
    return params, opt_state, value, aux


params = init_params
step_losses = []  # added: every step's training loss

# Computes metrics at initialization.
train_stats = dataset_stats(params, test_loader_batched)
train_accuracy = [train_stats["accuracy"]]
train_losses = [train_stats["loss"]]

test_stats = dataset_stats(params, test_loader_batched)
test_accuracy = [test_stats["accuracy"]]
test_losses = [test_stats["loss"]]

lr_scale_history = []
for epoch in range(N_EPOCHS):
    train_accuracy_epoch = []
    train_losses_epoch = []

    for _, train_batch in enumerate(train_loader_batched):
        params, opt_state, train_loss, train_aux = train_step(params, opt_state, train_batch)
        train_accuracy_epoch.append(train_aux["accuracy"])
        train_losses_epoch.append(train_loss)
        step_losses.append(train_loss)  # added

    mean_train_accuracy = np.mean(train_accuracy_epoch)
    mean_train_loss = np.mean(train_losses_epoch)

    # fetch the scaling factor from the reduce_on_plateau transform
    lr_scale = optax.tree.get(opt_state, "scale")
    lr_scale_history.append(lr_scale)

    train_accuracy.append(mean_train_accuracy)
    train_losses.append(mean_train_loss)

    test_stats = dataset_stats(params, test_loader_batched)
    test_accuracy.append(test_stats["accuracy"])
    test_losses.append(test_stats["loss"])
    print(
        f"Epoch {epoch + 1}/{N_EPOCHS}, mean train accuracy:"
        f" {mean_train_accuracy}, lr scale: {optax.tree.get(opt_state, 'scale')}"
    )

_support.record("chained_train_loss", step_losses)  # added
_support.record("chained_test_loss", test_losses)  # added
_support.record("chained_lr_scale", lr_scale_history)  # added

# ---- cell 23
# @markdown Number of epochs with no improvement after which learning rate will be reduced:
PATIENCE = 2  # @param{type:"integer"}  # changed: 5 in the notebook
# @markdown Number of epochs to wait before resuming normal operation after the learning rate reduction:
COOLDOWN = 0  # @param{type:"integer"}
# @markdown Factor by which to reduce the learning rate:
FACTOR = 0.5  # @param{type:"number"}
# @markdown Relative tolerance for measuring the new optimum:
RTOL = 1e-4  # @param{type:"number"}
# @markdown Number of iterations to accumulate an average value:
ACCUMULATION_SIZE = 1

# ---- cell 25
solver = optax.adam(LEARNING_RATE)
solver_state = solver.init(init_params)

# ---- cell 27
transform = contrib.reduce_on_plateau(
    patience=PATIENCE,
    cooldown=COOLDOWN,
    factor=FACTOR,
    rtol=RTOL,
    accumulation_size=ACCUMULATION_SIZE,
)

# Creates initial state for `contrib.reduce_on_plateau` transformation.
transform_state = transform.init(init_params)
transform_state


# ---- cell 29
@jax.jit
def train_step(params, solver_state, transform_state, batch):
    """Performs a one step update."""
    (loss, aux), grad = jax.value_and_grad(loss_accuracy, has_aux=True)(params, batch)
    # Computes updates scaled by the learning rate that was used to initialize
    # the `solver`.
    updates, solver_state = solver.update(grad, solver_state, params)
    # Scales updates, produced by `solver`, by the scaling value.
    updates = optax.tree.scale(transform_state.scale, updates)
    params = optax.apply_updates(params, updates)
    return params, solver_state, loss, aux


params = init_params
step_losses = []  # added: every step's training loss

# Computes metrics at initialization.
train_stats = dataset_stats(params, test_loader_batched)
train_accuracy = [train_stats["accuracy"]]
train_losses = [train_stats["loss"]]

test_stats = dataset_stats(params, test_loader_batched)
test_accuracy = [test_stats["accuracy"]]
test_losses = [test_stats["loss"]]

params = init_params
lr_scale_history = [transform_state.scale]
for epoch in range(N_EPOCHS):
    train_accuracy_epoch = []
    train_losses_epoch = []

    for train_batch in train_loader_batched:
        params, solver_state, train_loss, train_aux = train_step(
            params, solver_state, transform_state, train_batch
        )
        train_accuracy_epoch.append(train_aux["accuracy"])
        train_losses_epoch.append(train_loss)
        step_losses.append(train_loss)  # added

    mean_train_accuracy = np.mean(train_accuracy_epoch)
    mean_train_loss = np.mean(train_losses_epoch)

    # Adjusts the learning rate scaling value using the loss computed on the
    # test set.
    _, transform_state = transform.update(
        updates=params, state=transform_state, value=test_stats["loss"]
    )
    lr_scale_history.append(transform_state.scale)

    train_accuracy.append(mean_train_accuracy)
    train_losses.append(mean_train_loss)

    test_stats = dataset_stats(params, test_loader_batched)
    test_accuracy.append(test_stats["accuracy"])
    test_losses.append(test_stats["loss"])

    test_stats = dataset_stats(params, test_loader_batched)
    test_accuracy.append(test_stats["accuracy"])
    test_losses.append(test_stats["loss"])

    print(
        f"Epoch {epoch + 1}/{N_EPOCHS}, mean train accuracy:"
        f" {mean_train_accuracy}, lr scale: {transform_state.scale}"
    )

_support.record("separate_train_loss", step_losses)  # added
_support.record("separate_test_loss", test_losses)  # added
_support.record("separate_lr_scale", lr_scale_history)  # added
