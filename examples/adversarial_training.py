"""optax's "Adversarial training" example: a flax linen CNN trained with ``optax.adam`` on
images perturbed by a projected-gradient (PGD) attack, with an L2 penalty from
``optax.tree_utils.tree_norm`` and ``optax.losses.softmax_cross_entropy_with_integer_labels``.

Source: examples/adversarial_training.ipynb of https://github.com/google-deepmind/optax
(commit 2edbcbe2, August 2026; Apache License 2.0), code cells 1-7, as written (reformatted).

Changed (data and length only):
- MNIST from tensorflow_datasets through a grain pipeline -> scikit-learn's digits as 28x28
  MNIST-like uint8 images (``_support.mnist_like_digits``), batched as the grain pipeline does
  (training set shuffled with seed 45, remainder dropped); of them, the first 128 training and
  64 test images;
- 2 epochs instead of 10, batches of 32 instead of 128 (each step attacks the batch with 10
  gradient steps: this keeps the run to seconds);
- left out: the plots (cells 8-11, matplotlib) and the print of the device;
- added: the loss on each clean training batch before its step, and ``_support.record`` of
  those losses.
"""

# ruff: noqa: I001 - the published code as written: its imports, its style

import _support

# ---- cell 1
import datetime

import jax
from jax import numpy as jnp
from flax import linen as nn

import optax
from optax.losses import softmax_cross_entropy_with_integer_labels
from optax.tree_utils import tree_norm

# ---- cell 2
# @markdown Total number of epochs to train for:
EPOCHS = 2  # @param{type:"integer"}  # changed: 10 in the notebook
# @markdown Number of samples for each batch in the training set:
TRAIN_BATCH_SIZE = 32  # @param{type:"integer"}  # changed: 128 in the notebook
# @markdown Number of samples for each batch in the test set:
TEST_BATCH_SIZE = 32  # @param{type:"integer"}  # changed: 128 in the notebook
# @markdown Learning rate for the optimizer:
LEARNING_RATE = 0.001  # @param{type:"number"}
# @markdown The dataset to use.
DATASET = "mnist"  # @param{type:"string"}
# @markdown The amount of L2 regularization to use:
L2_REG = 0.0001  # @param{type:"number"}
# @markdown Adversarial perturbations lie within the infinity-ball of radius epsilon.
EPSILON = 0.01  # @param{type:"number"}


# ---- cell 3
class CNN(nn.Module):
    """A simple CNN model."""

    num_classes: int

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(features=32, kernel_size=(3, 3))(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = nn.Conv(features=64, kernel_size=(3, 3))(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))  # flatten
        x = nn.Dense(features=256)(x)
        x = nn.relu(x)
        x = nn.Dense(features=self.num_classes)(x)
        return x


# ---- cell 4 (changed: the data)
train_source, test_source = _support.mnist_like_digits()

train_loader_batched = _support.batched(
    train_source,
    TRAIN_BATCH_SIZE,
    shuffle_seed=45,
    map_fn=lambda x: (x["image"], x["label"]),
    limit=128,
)
test_loader_batched = _support.batched(
    test_source, TEST_BATCH_SIZE, map_fn=lambda x: (x["image"], x["label"]), limit=64
)

input_shape = (1, *train_source["image"].shape[1:])
num_classes = 10
iter_per_epoch_train = len(train_loader_batched)
iter_per_epoch_test = len(test_loader_batched)

# ---- cell 5
net = CNN(num_classes)


@jax.jit
def accuracy(params, data):
    inputs, labels = data
    logits = net.apply({"params": params}, inputs)
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


@jax.jit
def loss_fun(params, l2reg, data):
    """Compute the loss of the network."""
    inputs, labels = data
    x = inputs.astype(jnp.float32)
    logits = net.apply({"params": params}, x)
    sqnorm = tree_norm(params, squared=True)
    loss_value = jnp.mean(softmax_cross_entropy_with_integer_labels(logits, labels))
    return loss_value + 0.5 * l2reg * sqnorm


@jax.jit
def pgd_attack(image, label, params, epsilon=0.1, maxiter=10):
    """PGD attack on the L-infinity ball with radius epsilon.

    Args:
      image: array-like, input data for the CNN
      label: integer, class label corresponding to image
      params: tree, parameters of the model to attack
      epsilon: float, radius of the L-infinity ball.
      maxiter: int, number of iterations of this algorithm.

    Returns:
      perturbed_image: Adversarial image on the boundary of the L-infinity ball
        of radius epsilon and centered at image.

    Notes:
      PGD attack is described in (Madry et al. 2017),
      https://arxiv.org/pdf/1706.06083.pdf
    """
    image_perturbation = jnp.zeros_like(image)

    def adversarial_loss(perturbation):
        return loss_fun(params, 0, (image + perturbation, label))

    grad_adversarial = jax.grad(adversarial_loss)
    for _ in range(maxiter):
        # compute gradient of the loss wrt to the image
        sign_grad = jnp.sign(grad_adversarial(image_perturbation))

        # heuristic step-size 2 eps / maxiter
        image_perturbation += (2 * epsilon / maxiter) * sign_grad
        # projection step onto the L-infinity ball centered at image
        image_perturbation = jnp.clip(image_perturbation, -epsilon, epsilon)

    # clip the image to ensure pixels are between 0 and 1
    return jnp.clip(image + image_perturbation, 0, 1)


# ---- cell 6
def dataset_stats(params, data_loader, iter_per_epoch):
    """Computes accuracy on clean and adversarial images."""
    adversarial_accuracy = 0.0
    clean_accuracy = 0.0
    for batch in data_loader:
        images, labels = batch
        images = images.astype(jnp.float32) / 255
        clean_accuracy += jnp.mean(accuracy(params, (images, labels))) / iter_per_epoch
        adversarial_images = pgd_attack(images, labels, params, epsilon=EPSILON)
        adversarial_accuracy += (
            jnp.mean(accuracy(params, (adversarial_images, labels))) / iter_per_epoch
        )
    return {"adversarial accuracy": adversarial_accuracy, "accuracy": clean_accuracy}


@jax.jit
def train_step(params, opt_state, batch):
    images, labels = batch
    # convert images to float as attack requires to take gradients wrt to them
    images = images.astype(jnp.float32) / 255
    adversarial_images_train = pgd_attack(images, labels, params, epsilon=EPSILON)
    # train on adversarial images
    loss_grad_fun = jax.grad(loss_fun)
    grads = loss_grad_fun(params, L2_REG, (adversarial_images_train, labels))
    updates, opt_state = optimizer.update(grads, opt_state)
    params = optax.apply_updates(params, updates)
    return params, opt_state


# ---- cell 7
# Initialize parameters.
key = jax.random.PRNGKey(0)
var_params = net.init(key, jnp.zeros(input_shape))["params"]

# Initialize the optimizer.
optimizer = optax.adam(LEARNING_RATE)
opt_state = optimizer.init(var_params)

start = datetime.datetime.now().replace(microsecond=0)

accuracy_train = []
accuracy_test = []
adversarial_accuracy_train = []
adversarial_accuracy_test = []
clean_losses = []  # added: the loss on each clean training batch before its step
for epoch in range(EPOCHS):
    for train_batch in train_loader_batched:
        clean_images = train_batch[0].astype(jnp.float32) / 255  # added
        clean_losses.append(loss_fun(var_params, L2_REG, (clean_images, train_batch[1])))  # added
        var_params, opt_state = train_step(var_params, opt_state, train_batch)

    # compute train set accuracy, both on clean and adversarial images
    train_stats = dataset_stats(var_params, train_loader_batched, iter_per_epoch_train)
    accuracy_train.append(train_stats["accuracy"])
    adversarial_accuracy_train.append(train_stats["adversarial accuracy"])

    # compute test set accuracy, both on clean and adversarial images
    test_stats = dataset_stats(var_params, test_loader_batched, iter_per_epoch_test)
    accuracy_test.append(test_stats["accuracy"])
    adversarial_accuracy_test.append(test_stats["adversarial accuracy"])

    time_elapsed = datetime.datetime.now().replace(microsecond=0) - start
    print(f"Epoch {epoch} out of {EPOCHS}")
    print(f"Accuracy on train set: {accuracy_train[-1]:.3f}")
    print(f"Accuracy on test set: {accuracy_test[-1]:.3f}")
    print(f"Adversarial accuracy on train set: {adversarial_accuracy_train[-1]:.3f}")
    print(f"Adversarial accuracy on test set: {adversarial_accuracy_test[-1]:.3f}")
    print(f"Time elapsed: {time_elapsed}\n")

_support.record("train_loss", clean_losses)  # added
