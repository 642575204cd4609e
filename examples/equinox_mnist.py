"""equinox's "Convolutional Neural Network on MNIST" example: an ``eqx.Module`` CNN trained with
``optax.adamw`` in equinox's idiom (``optim.init(eqx.filter(model, eqx.is_array))``,
``eqx.filter_value_and_grad``, ``eqx.apply_updates``).

Source: docs/examples/mnist.ipynb of https://github.com/patrick-kidger/equinox (commit
9336d820, June 2026; Apache License 2.0), code cells 1-27, as written (reformatted). The
program names its optimizer ``optim``: that is the notebook's variable, an optax optimizer.

Changed (data and length only):
- MNIST from torchvision through torch DataLoaders -> scikit-learn's digits as 28x28
  MNIST-like images (``_support.mnist_like_digits``: 1500 for training, 297 for testing),
  normalised as ``Normalize((0.5,), (0.5,))`` does and laid out as torchvision's (N, 1, 28,
  28), served by ``_support.TorchLikeLoader`` (shuffled with a seeded generator, a partial last
  batch, batches with torch's ``.numpy()``);
- 30 steps instead of 300, evaluating every 10 steps instead of 30;
- left out: cell 14, which shows an error on purpose;
- added: ``_support.record`` of the per-step training losses and of the test losses.
"""

# ruff: noqa: B905, F722 - the published code as written: its imports, its style

import _support

# ---- cell 1
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np  # changed: torch and torchvision in the notebook
import optax  # https://github.com/deepmind/optax
from jaxtyping import Array, Float, Int, PyTree  # https://github.com/google/jaxtyping

# ---- cell 2
# Hyperparameters

BATCH_SIZE = 64
LEARNING_RATE = 3e-4
STEPS = 30  # changed: 300 in the notebook
PRINT_EVERY = 10  # changed: 30 in the notebook
SEED = 5678

key = jax.random.PRNGKey(SEED)


# ---- cell 4 (changed: the data)
def normalise_data(images):
    """torchvision's ToTensor() then Normalize((0.5,), (0.5,)): (N, 1, 28, 28) in [-1, 1]."""
    x = np.transpose(images, (0, 3, 1, 2)).astype(np.float32) / 255.0
    return (x - 0.5) / 0.5


train_source, test_source = _support.mnist_like_digits()
trainloader = _support.TorchLikeLoader(
    normalise_data(train_source["image"]), train_source["label"], BATCH_SIZE, shuffle=True, seed=0
)
testloader = _support.TorchLikeLoader(
    normalise_data(test_source["image"]), test_source["label"], BATCH_SIZE, shuffle=True, seed=1
)

# ---- cell 5
# Checking our data a bit (by now, everyone knows what the MNIST dataset looks like)
dummy_x, dummy_y = next(iter(trainloader))
dummy_x = dummy_x.numpy()
dummy_y = dummy_y.numpy()
print(dummy_x.shape)  # 64x1x28x28
print(dummy_y.shape)  # 64
print(dummy_y)


# ---- cell 8
class CNN(eqx.Module):
    layers: list

    def __init__(self, key):
        key1, key2, key3, key4 = jax.random.split(key, 4)
        # Standard CNN setup: convolutional layer, followed by flattening,
        # with a small MLP on top.
        self.layers = [
            eqx.nn.Conv2d(1, 3, kernel_size=4, key=key1),
            eqx.nn.MaxPool2d(kernel_size=2),
            jax.nn.relu,
            jnp.ravel,
            eqx.nn.Linear(1728, 512, key=key2),
            jax.nn.sigmoid,
            eqx.nn.Linear(512, 64, key=key3),
            jax.nn.relu,
            eqx.nn.Linear(64, 10, key=key4),
            jax.nn.log_softmax,
        ]

    def __call__(self, x: Float[Array, "1 28 28"]) -> Float[Array, "10"]:
        for layer in self.layers:
            x = layer(x)
        return x


key, subkey = jax.random.split(key, 2)
model = CNN(subkey)

# ---- cell 10
print(model)


# ---- cell 12
def loss(model: CNN, x: Float[Array, "batch 1 28 28"], y: Int[Array, " batch"]) -> Float[Array, ""]:
    # Our input has the shape (BATCH_SIZE, 1, 28, 28), but our model operations on
    # a single input input image of shape (1, 28, 28).
    #
    # Therefore, we have to use jax.vmap, which in this case maps our model over the
    # leading (batch) axis.
    pred_y = jax.vmap(model)(x)
    return cross_entropy(y, pred_y)


def cross_entropy(y: Int[Array, " batch"], pred_y: Float[Array, "batch 10"]) -> Float[Array, ""]:
    # y are the true targets, and should be integers 0-9.
    # pred_y are the log-softmax'd predictions.
    pred_y = jnp.take_along_axis(pred_y, jnp.expand_dims(y, 1), axis=1)
    return -jnp.mean(pred_y)


# Example loss
loss_value = loss(model, dummy_x, dummy_y)
print(loss_value.shape)  # scalar loss
# Example inference
output = jax.vmap(model)(dummy_x)
print(output.shape)  # batch of predictions

# ---- cell 16
# This will work!
params, static = eqx.partition(model, eqx.is_array)


def loss2(params, static, x, y):
    model = eqx.combine(params, static)
    return loss(model, x, y)


loss_value, grads = jax.value_and_grad(loss2)(params, static, dummy_x, dummy_y)
print(loss_value)

# ---- cell 18
# This will work too!
value, grads = eqx.filter_value_and_grad(loss)(model, dummy_x, dummy_y)
print(value)

# ---- cell 21
loss = eqx.filter_jit(loss)  # JIT our loss function from earlier!


@eqx.filter_jit
def compute_accuracy(
    model: CNN, x: Float[Array, "batch 1 28 28"], y: Int[Array, " batch"]
) -> Float[Array, ""]:
    """This function takes as input the current model
    and computes the average accuracy on a batch.
    """
    pred_y = jax.vmap(model)(x)
    pred_y = jnp.argmax(pred_y, axis=1)
    return jnp.mean(y == pred_y)


# ---- cell 22
def evaluate(model: CNN, testloader: _support.TorchLikeLoader):  # changed: a torch DataLoader
    """This function evaluates the model on the test dataset,
    computing both the average loss and the average accuracy.
    """
    avg_loss = 0
    avg_acc = 0
    for x, y in testloader:
        x = x.numpy()
        y = y.numpy()
        # Note that all the JAX operations happen inside `loss` and `compute_accuracy`,
        # and both have JIT wrappers, so this is fast.
        avg_loss += loss(model, x, y)
        avg_acc += compute_accuracy(model, x, y)
    return avg_loss / len(testloader), avg_acc / len(testloader)


# ---- cell 23
evaluate(model, testloader)

# ---- cell 25
optim = optax.adamw(LEARNING_RATE)

train_losses = []  # added: every step's training loss
test_losses = []  # added: the test loss at each evaluation


# ---- cell 26
def train(
    model: CNN,
    trainloader: _support.TorchLikeLoader,  # changed: a torch DataLoader
    testloader: _support.TorchLikeLoader,  # changed: a torch DataLoader
    optim: optax.GradientTransformation,
    steps: int,
    print_every: int,
) -> CNN:
    # Just like earlier: It only makes sense to train the arrays in our model,
    # so filter out everything else.
    opt_state = optim.init(eqx.filter(model, eqx.is_array))

    # Always wrap everything -- computing gradients, running the optimiser, updating
    # the model -- into a single JIT region. This ensures things run as fast as
    # possible.
    @eqx.filter_jit
    def make_step(
        model: CNN,
        opt_state: PyTree,
        x: Float[Array, "batch 1 28 28"],
        y: Int[Array, " batch"],
    ):
        loss_value, grads = eqx.filter_value_and_grad(loss)(model, x, y)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        model = eqx.apply_updates(model, updates)
        return model, opt_state, loss_value

    # Loop over our training dataset as many times as we need.
    def infinite_trainloader():
        while True:
            yield from trainloader

    for step, (x, y) in zip(range(steps), infinite_trainloader()):
        # PyTorch dataloaders give PyTorch tensors by default,
        # so convert them to NumPy arrays.
        x = x.numpy()
        y = y.numpy()
        model, opt_state, train_loss = make_step(model, opt_state, x, y)
        train_losses.append(train_loss)  # added
        if (step % print_every) == 0 or (step == steps - 1):
            test_loss, test_accuracy = evaluate(model, testloader)
            test_losses.append(test_loss)  # added
            print(
                f"{step=}, train_loss={train_loss.item()}, "
                f"test_loss={test_loss.item()}, test_accuracy={test_accuracy.item()}"
            )
    return model


# ---- cell 27
model = train(model, trainloader, testloader, optim, STEPS, PRINT_EVERY)
_support.record("train_loss", train_losses)  # added
_support.record("test_loss", test_losses)  # added
