"""optax's "Getting started" guide: a linear model, a custom chained optimizer with gradient
clipping and an exponentially decaying schedule, hyperparameters injected from a schedule, and
an MLP fitted with Adam, then with clipping plus AdamW on a warmup-cosine schedule, then with an
injected schedule.

Source: docs/getting_started.ipynb of https://github.com/google-deepmind/optax (commit
2edbcbe2, August 2026; Apache License 2.0), code cells 2-27, as written (reformatted).

Changed (data and length only):
- the random bits were drawn from NumPy's global generator unseeded; it is seeded
  (``np.random.seed(0)``) so that two runs see the same data;
- 300 steps instead of 1000 in the two linear-model loops (their asserts hold from 300 steps
  on), and 40 instead of 1000 in the MLP fits: the second and third fits warm up to a learning
  rate of 1.0, where training is chaotic (a last-bit rounding difference in one step grows to
  a 2e-6 relative difference in the loss by step 50 and to O(1) by step 100, measured between
  two implementations of the same float32 arithmetic), so the fits stop before that;
- the notebook's display-only cells (the "Components" section's snippets, which train
  nothing) are left out;
- added: lines keeping the losses (the linear models' parameters at each step, whose losses
  are computed after the loop; the MLP fits' per-step losses) and ``_support.record`` calls
  writing them, so that a test can compare them.
"""

# ruff: noqa: B905, E402, I001 - the published code as written: its imports, its style

import _support

# ---- cell 2
import jax.numpy as jnp
import jax
import optax
import functools


# ---- cell 4
@functools.partial(jax.vmap, in_axes=(None, 0))
def network(params, x):
    return jnp.dot(params, x)


def compute_loss(params, x, y):
    y_pred = network(params, x)
    loss = jnp.mean(optax.l2_loss(y_pred, y))
    return loss


# ---- cell 6
key = jax.random.PRNGKey(42)
target_params = 0.5

# Generate some data.
xs = jax.random.normal(key, (16, 2))
ys = jnp.sum(xs * target_params, axis=-1)

# ---- cell 8
start_learning_rate = 1e-1
optimizer = optax.adam(start_learning_rate)

# Initialize parameters of the model + optimizer.
params = jnp.array([0.0, 0.0])
opt_state = optimizer.init(params)

# ---- cell 10
# A simple update loop.
trajectory = [params]  # added
for _ in range(300):  # changed: 1000 steps in the notebook (the assert holds from 300 on)
    grads = jax.grad(compute_loss)(params, xs, ys)
    updates, opt_state = optimizer.update(grads, opt_state)
    params = optax.apply_updates(params, updates)
    trajectory.append(params)  # added

assert jnp.allclose(params, target_params), (
    "Optimization should retrieve the target params used to generate the data."
)
# added: the loss before each step and after the last
_support.record(
    "linear_adam", jax.vmap(compute_loss, (0, None, None))(jnp.stack(trajectory), xs, ys)
)

# ---- cell 12
# Exponential decay of the learning rate.
scheduler = optax.exponential_decay(
    init_value=start_learning_rate, transition_steps=1000, decay_rate=0.99
)

# Combining gradient transforms using `optax.chain`.
gradient_transform = optax.chain(
    optax.clip_by_global_norm(1.0),  # Clip by the gradient by the global norm.
    optax.scale_by_adam(),  # Use the updates from adam.
    optax.scale_by_schedule(scheduler),  # Use the learning rate from the scheduler.
    # Scale updates by -1 since optax.apply_updates is additive and we want to descend on the loss.
    optax.scale(-1.0),
)

# ---- cell 13
# Initialize parameters of the model + optimizer.
params = jnp.array([0.0, 0.0])  # Recall target_params=0.5.
opt_state = gradient_transform.init(params)

# A simple update loop.
trajectory = [params]  # added
for _ in range(300):  # changed: 1000 steps in the notebook (the assert holds from 300 on)
    grads = jax.grad(compute_loss)(params, xs, ys)
    updates, opt_state = gradient_transform.update(grads, opt_state)
    params = optax.apply_updates(params, updates)
    trajectory.append(params)  # added

assert jnp.allclose(params, target_params), (
    "Optimization should retrieve the target params used to generate the data."
)
# added: the loss before each step and after the last
_support.record(
    "linear_chain", jax.vmap(compute_loss, (0, None, None))(jnp.stack(trajectory), xs, ys)
)

# ---- cell 16
decaying_global_norm_tx = optax.inject_hyperparams(optax.clip_by_global_norm)(
    max_norm=optax.linear_schedule(1.0, 0.0, transition_steps=99)
)

opt_state = decaying_global_norm_tx.init(None)
assert opt_state.hyperparams["max_norm"] == 1.0, "Max norm should start at 1.0"

for _ in range(100):
    _, opt_state = decaying_global_norm_tx.update(None, opt_state)

assert opt_state.hyperparams["max_norm"] == 0.0, "Max norm should end at 0.0"

# ---- cell 18
import optax
import jax.numpy as jnp
import jax
import numpy as np

BATCH_SIZE = 5
NUM_TRAIN_STEPS = 40  # changed: 1_000 in the notebook
np.random.seed(0)  # changed: the notebook draws unseeded data
RAW_TRAINING_DATA = np.random.randint(255, size=(NUM_TRAIN_STEPS, BATCH_SIZE, 1))

TRAINING_DATA = np.unpackbits(RAW_TRAINING_DATA.astype(np.uint8), axis=-1)
LABELS = (
    jax.nn.one_hot(RAW_TRAINING_DATA % 2, 2)
    .astype(jnp.float32)
    .reshape(NUM_TRAIN_STEPS, BATCH_SIZE, 2)
)

# ---- cell 20
initial_params = {
    "hidden": jax.random.normal(shape=[8, 32], key=jax.random.PRNGKey(0)),
    "output": jax.random.normal(shape=[32, 2], key=jax.random.PRNGKey(1)),
}


def net(x: jnp.ndarray, params: optax.Params) -> jnp.ndarray:
    x = jnp.dot(x, params["hidden"])
    x = jax.nn.relu(x)
    x = jnp.dot(x, params["output"])
    return x


def loss(params: optax.Params, batch: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
    y_hat = net(batch, params)

    # optax also provides a number of common loss functions.
    loss_value = optax.sigmoid_binary_cross_entropy(y_hat, labels).sum(axis=-1)

    return loss_value.mean()


# ---- cell 22
fit_losses = []  # added: the per-step losses of the latest fit


def fit(params: optax.Params, optimizer: optax.GradientTransformation) -> optax.Params:
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, batch, labels):
        loss_value, grads = jax.value_and_grad(loss)(params, batch, labels)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss_value

    fit_losses.clear()  # added
    for i, (batch, labels) in enumerate(zip(TRAINING_DATA, LABELS)):
        params, opt_state, loss_value = step(params, opt_state, batch, labels)
        fit_losses.append(loss_value)  # added
        if i % 100 == 0:
            print(f"step {i}, loss: {loss_value}")

    return params, opt_state


# Finally, we can fit our parametrized function using the Adam optimizer
# provided by optax.
optimizer = optax.adam(learning_rate=1e-2)
_ = fit(initial_params, optimizer)
_support.record("mlp_adam", fit_losses)  # added

# ---- cell 25
schedule = optax.warmup_cosine_decay_schedule(
    init_value=0.0,
    peak_value=1.0,
    warmup_steps=50,
    decay_steps=1_000,
    end_value=0.0,
)

optimizer = optax.chain(
    optax.clip(1.0),
    optax.adamw(learning_rate=schedule),
)

_ = fit(initial_params, optimizer)
_support.record("mlp_clip_adamw_warmup_cosine", fit_losses)  # added

# ---- cell 27
optimizer = optax.inject_hyperparams(optax.adamw)(learning_rate=schedule)

params = initial_params
state = optimizer.init(params)
print("initial learning rate:", state.hyperparams["learning_rate"])

_, state = fit(initial_params, optimizer)

print("final learning rate:", state.hyperparams["learning_rate"])
_support.record("mlp_inject_hyperparams_adamw", fit_losses)  # added
