"""optax's "Lookahead Optimizer on MNIST" example: a flax NNX CNN trained with
``optax.lookahead`` around Adam, on ``optax.LookaheadParams`` (fast and slow weights), with
``optax.softmax_cross_entropy_with_integer_labels``; evaluation on the slow weights.

Source: examples/lookahead_mnist.ipynb of https://github.com/google-deepmind/optax (commit
2edbcbe2, August 2026; Apache License 2.0), code cells 1-12, as written (reformatted).

Changed (data only):
- MNIST from tensorflow_datasets through a grain pipeline -> scikit-learn's digits as 28x28
  MNIST-like images (``_support.mnist_like_digits``: 1500 for training, 297 for testing),
  batched as the grain pipeline does (shuffled with seed 45, ``image / 255.``, batches of 256
  with the remainder dropped): 5 steps per epoch, so 2 epochs instead of 1 (the slow weights
  are synchronised every 5 steps);
- added: ``_support.record`` of the per-step training losses and of the test losses.
"""

# ruff: noqa: B007, I001, RUF005 - the published code as written: its imports, its style

import _support

# ---- cell 1
from functools import partial
from flax import nnx
import jax
import jax.numpy as jnp
import optax

# ---- cell 2
# @markdown The learning rate for the fast optimizer:
FAST_LEARNING_RATE = 0.002  # @param{type:"number"}
# @markdown The learning rate for the slow optimizer:
SLOW_LEARNING_RATE = 0.1  # @param{type:"number"}
# @markdown Number of fast optimizer steps to take before synchronizing parameters:
SYNC_PERIOD = 5  # @param{type:"integer"}
# @markdown Number of samples in each batch:
BATCH_SIZE = 256  # @param{type:"integer"}
# @markdown Total number of epochs to train for:
N_EPOCHS = 2  # @param{type:"integer"}  # changed: 1 in the notebook

# ---- cell 4 (changed: the data)
train_source, test_source = _support.mnist_like_digits()

IMG_SIZE = train_source["image"].shape[1:]
NUM_CLASSES = 10

train_loader_batched = _support.batched(
    train_source, BATCH_SIZE, shuffle_seed=45, map_fn=lambda x: (x["image"] / 255.0, x["label"])
)

test_loader_batched = _support.batched(
    test_source, BATCH_SIZE, map_fn=lambda x: (x["image"] / 255.0, x["label"])
)


# ---- cell 6
class CNN(nnx.Module):
    """A simple CNN model."""

    def __init__(self, in_features, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(
            in_features=in_features, out_features=32, kernel_size=(3, 3), rngs=rngs
        )
        self.pool1 = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.conv2 = nnx.Conv(in_features=32, out_features=64, kernel_size=(3, 3), rngs=rngs)
        self.pool2 = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.dense1 = nnx.Linear(in_features=7 * 7 * 64, out_features=256, rngs=rngs)
        self.dense2 = nnx.Linear(in_features=256, out_features=10, rngs=rngs)

    def __call__(self, x):
        x = self.conv1(x)
        x = nnx.relu(x)
        x = self.pool1(x)
        x = self.conv2(x)
        x = nnx.relu(x)
        x = self.pool2(x)
        x = x.reshape((x.shape[0], -1))  # flatten
        x = self.dense1(x)
        x = nnx.relu(x)
        x = self.dense2(x)
        return x


# ---- cell 7
net = CNN(IMG_SIZE[-1], nnx.Rngs(0))


@jax.jit
def predict(params, model, inputs):
    nnx.update(model, params)
    return model(inputs)


@jax.jit
def loss_accuracy(params, model, data):
    """Computes loss and accuracy over a mini-batch.

    Args:
      params: parameters of the model.
      model: Instance of the nnx.Module.
      data: tuple of (inputs, labels).

    Returns:
      loss: float
      accuracy: float
    """
    inputs, labels = data
    logits = predict(params, model, inputs)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits=logits, labels=labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == labels)
    return loss, {"accuracy": accuracy}


# ---- cell 9
fast_solver = optax.adam(FAST_LEARNING_RATE)
solver = optax.lookahead(fast_solver, SYNC_PERIOD, SLOW_LEARNING_RATE)
rng = jax.random.PRNGKey(0)
dummy_data = jnp.ones((1,) + IMG_SIZE, dtype=jnp.float32)

_ = net(dummy_data)
params = nnx.state(net, nnx.Param)

# Initializes the lookahead optimizer with the initial model parameters.
params = optax.LookaheadParams.init_synced(params)
solver_state = solver.init(params)


def dataset_stats(params, model, data_loader):
    """Computes loss and accuracy over the dataset `data_loader`."""
    all_accuracy = []
    all_loss = []
    for batch in data_loader:
        batch_loss, batch_aux = loss_accuracy(params, model, batch)
        all_loss.append(batch_loss)
        all_accuracy.append(batch_aux["accuracy"])
    return {"loss": jnp.mean(jnp.array(all_loss)), "accuracy": jnp.mean(jnp.array(all_accuracy))}


# ---- cell 11
train_accuracy = []
train_losses = []
step_losses = []  # added: every step's loss

# Computes test set accuracy at initialization.
test_stats = dataset_stats(params.slow, net, test_loader_batched)
test_accuracy = [test_stats["accuracy"]]
test_losses = [test_stats["loss"]]


@jax.jit
def train_step(params, model, solver_state, batch):
    # Performs a one step update.
    (loss, aux), grad = jax.value_and_grad(loss_accuracy, has_aux=True)(params.fast, model, batch)
    updates, solver_state = solver.update(grad, solver_state, params)
    params = optax.apply_updates(params, updates)
    return params, solver_state, loss, aux


for epoch in range(N_EPOCHS):
    train_accuracy_epoch = []
    train_losses_epoch = []

    for step, train_batch in enumerate(train_loader_batched):
        params, solver_state, train_loss, train_aux = train_step(
            params, net, solver_state, train_batch
        )
        train_accuracy_epoch.append(train_aux["accuracy"])
        train_losses_epoch.append(train_loss)
        step_losses.append(train_loss)  # added
        if step % 20 == 0:
            print(
                f"step {step}, train loss: {train_loss:.2e}, train accuracy:"
                f" {train_aux['accuracy']:.2f}"
            )

    # Validation is done on the slow lookahead parameters.
    test_stats = dataset_stats(params.slow, net, test_loader_batched)
    test_accuracy.append(test_stats["accuracy"])
    test_losses.append(test_stats["loss"])
    train_accuracy.append(jnp.mean(jnp.array(train_accuracy_epoch)))
    train_losses.append(jnp.mean(jnp.array(train_losses_epoch)))

# ---- cell 12
print(f"Improved accuracy on test DS from {test_accuracy[0]} to {test_accuracy[-1]}")
_support.record("train_loss", step_losses)  # added
_support.record("test_loss", test_losses)  # added
