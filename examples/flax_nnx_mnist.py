"""flax's "MNIST tutorial" (Flax NNX): a CNN with batch norm and dropout, trained through
``nnx.Optimizer(model, optax.adamw(learning_rate, momentum), wrt=nnx.Param)`` on
``optax.softmax_cross_entropy_with_integer_labels``, with ``nnx.MultiMetric`` metrics and
``nnx.view`` train/eval views.

Source: docs_nnx/mnist_tutorial.md of https://github.com/google/flax (commit 18f8f311, July
2026; Apache License 2.0), sections 2-7, as written (reformatted).

Changed (data and length only):
- MNIST from Hugging Face ``datasets`` -> scikit-learn's digits as 28x28 MNIST-like images
  (``_support.mnist_like_digits``: 1500 for training, 297 for testing), in the same dicts of
  NumPy arrays ``make_batches`` yields (training set shuffled with a seeded generator);
- 30 training steps instead of 1200, evaluating every 10 instead of 200;
- tensorboardX's ``SummaryWriter`` -> a stand-in that keeps the scalars the program logs (its
  ``add_figure`` keeps nothing); those losses are written with ``_support.record``;
- left out: section 8, exporting the model with orbax and TensorFlow.
"""

# ruff: noqa: B018, E402, F401, I001 - the published code as written: its imports, its style

import _support

# ---- section 2 (changed: the data)
import numpy as np
import matplotlib.pyplot as plt

train_steps = 30  # changed: 1200 in the tutorial
eval_every = 10  # changed: 200 in the tutorial
batch_size = 32

train_source, test_source = _support.mnist_like_digits()
order = np.random.default_rng(0).permutation(len(train_source["label"]))
train_ds = {key: value[order] for key, value in train_source.items()}
test_ds = test_source


def make_batches(ds, batch_size):
    """Yield batches of normalized (image, label) numpy arrays."""
    for i in range(0, len(ds["label"]), batch_size):
        images = ds["image"][i : i + batch_size]
        if len(images) < batch_size:  # drop incomplete final batch
            break
        yield {
            "image": images.astype(np.float32) / 255.0,
            "label": ds["label"][i : i + batch_size],
        }


# ---- section 3
from flax import nnx  # The Flax NNX API.
from functools import partial
from typing import Optional


class CNN(nnx.Module):
    """A simple CNN model."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 32, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(32, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=0.025)
        self.conv2 = nnx.Conv(32, 64, kernel_size=(3, 3), rngs=rngs)
        self.batch_norm2 = nnx.BatchNorm(64, rngs=rngs)
        self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(3136, 256, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=0.025)
        self.linear2 = nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x, rngs: nnx.Rngs | None = None):
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x), rngs=rngs))))
        x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
        x = x.reshape(x.shape[0], -1)  # flatten
        x = nnx.relu(self.dropout2(self.linear1(x), rngs=rngs))
        x = self.linear2(x)
        return x


# Instantiate the model.
model = CNN(rngs=nnx.Rngs(0))
# Visualize it.
nnx.display(model)

# ---- section 3, "Run the model"
import jax.numpy as jnp  # JAX NumPy

y = model(jnp.ones((1, 28, 28, 1)), nnx.Rngs(0))
y

# ---- section 4
import optax

learning_rate = 0.005
momentum = 0.9

optimizer = nnx.Optimizer(model, optax.adamw(learning_rate, momentum), wrt=nnx.Param)
metrics = nnx.MultiMetric(
    accuracy=nnx.metrics.Accuracy(),
    loss=nnx.metrics.Average("loss"),
)

nnx.display(optimizer)


# ---- section 5
def loss_fn(model: CNN, batch, rngs: nnx.Rngs | None = None):
    logits = model(batch["image"], rngs)
    loss = optax.softmax_cross_entropy_with_integer_labels(
        logits=logits, labels=batch["label"]
    ).mean()
    return loss, logits


@nnx.jit
def train_step(
    model: CNN, optimizer: nnx.Optimizer, metrics: nnx.MultiMetric, rngs: nnx.Rngs, batch
):
    """Train for a single step."""
    grad_fn = nnx.value_and_grad(loss_fn, has_aux=True)
    (loss, logits), grads = grad_fn(model, batch, rngs)
    metrics.update(loss=loss, logits=logits, labels=batch["label"])  # In-place updates.
    optimizer.update(model, grads)  # In-place updates.


@nnx.jit
def eval_step(model: CNN, metrics: nnx.MultiMetric, batch):
    loss, logits = loss_fn(model, batch)
    metrics.update(loss=loss, logits=logits, labels=batch["label"])  # In-place updates.


# ---- section 6
train_model = nnx.view(model, deterministic=False, use_running_average=False)
eval_model = nnx.view(model, deterministic=True, use_running_average=True)


@nnx.jit
def pred_step(model: CNN, batch):
    logits = model(batch["image"], None)
    return logits.argmax(axis=1)


def plot_predictions(test_batch, pred):
    fig, axs = plt.subplots(5, 5, figsize=(6, 6))
    for i, ax in enumerate(axs.flatten()):
        ax.imshow(test_batch["image"][i, ..., 0], cmap="binary")
        # ax.set_title(f'label={pred[i]}')
        color = "green" if test_batch["label"][i] == pred[i] else "red"
        ax.text(0.05, 0.05, str(pred[i]), transform=ax.transAxes, color=color)
        ax.axis("off")
    return fig


# ---- section 7 (changed: tensorboardX's SummaryWriter -> one that keeps the scalars)
class SummaryWriter:
    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step):
        self.scalars.setdefault(tag, []).append(float(value))

    def add_figure(self, tag, figure, step):
        plt.close(figure)


writer = SummaryWriter()

rngs = nnx.Rngs(0)

for step, batch in enumerate(make_batches(train_ds, batch_size)):
    if step >= train_steps:
        break
    # Run the optimization for one step and make a stateful update to the following:
    # - The train state's model parameters
    # - The optimizer state
    # - The training loss and accuracy batch metrics
    train_step(train_model, optimizer, metrics, rngs, batch)

    if step > 0 and (
        step % eval_every == 0 or step == train_steps - 1
    ):  # Evaluation period passed.
        # Log the training metrics.
        for metric, value in metrics.compute().items():  # Compute the metrics.
            writer.add_scalar(f"train_{metric}", value, step)  # Record the metrics.
        metrics.reset()  # Reset the metrics for the test set.

        # Compute the metrics on the test set after each training epoch.
        for test_batch in make_batches(test_ds, batch_size):
            eval_step(eval_model, metrics, test_batch)

        # Show predicted labels on a single test batch
        pred = pred_step(eval_model, test_batch)
        fig = plot_predictions(test_batch, pred)
        writer.add_figure("inference", fig, step)

        # Log the test metrics.
        for metric, value in metrics.compute().items():
            writer.add_scalar(f"test_{metric}", value, step)  # Record the metrics.

        metrics.reset()  # Reset the metrics for the next training epoch.

_support.record("train_loss", writer.scalars["train_loss"])  # added
_support.record("test_loss", writer.scalars["test_loss"])  # added
