"""optim.losses' CTC loss against optax's, under jit: bitwise, values and gradients.

Ours reads each label's log-probability by index where optax multiplies by a one-hot matrix;
on CPU the products are exact, so values, forward variables and gradients agree bit for bit,
repeated labels and padding labels outside [0, K) included.
"""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches, normal

from optim import losses

B, T, K, N = 3, 12, 6, 5


def _batch(blank_id=0, padding_label=0, seed=0):
    rng = np.random.default_rng(seed)
    logits = normal((B, T, K), seed, 2.0)
    classes = [k for k in range(K) if k != blank_id]
    labels = rng.choice(classes, (B, N))
    labels[0, 1] = labels[0, 2]  # a repeated label, which needs a blank in between
    label_lengths, frame_lengths = np.array([5, 3, 1]), np.array([12, 9, 4])
    label_paddings = (np.arange(N) >= label_lengths[:, None]).astype(np.float32)
    labels = np.where(label_paddings > 0, padding_label, labels)
    logit_paddings = (np.arange(T) >= frame_lengths[:, None]).astype(np.float32)
    return (
        logits,
        jnp.asarray(logit_paddings),
        jnp.asarray(labels, jnp.int32),
        jnp.asarray(label_paddings),
    )


# Each case compiles two scans and their gradients (seconds on a busy CPU): two cases run by
# default, the rest with -m slow.
@pytest.mark.parametrize(
    ("blank_id", "padding_label"),
    [
        (0, 0),
        (2, K + 3),
        pytest.param(K - 1, 0, marks=pytest.mark.slow),
        pytest.param(0, -1, marks=pytest.mark.slow),
    ],
)
def test_ctc_loss_with_forward_probs_matches_optax(blank_id, padding_label):
    # Padding labels outside [0, K) read 0, as optax's one-hot product gives them.
    args = _batch(blank_id, padding_label)
    assert_matches(
        losses.ctc_loss_with_forward_probs,
        optax.losses.ctc_loss_with_forward_probs,
        *args,
        blank_id=blank_id,
    )


def test_ctc_loss_matches_optax_with_another_log_epsilon():
    args = _batch(seed=1)
    assert_matches(losses.ctc_loss, optax.losses.ctc_loss, *args, log_epsilon=-1e4, grad_argnums=())


def test_ctc_loss_counts_the_alignments():
    # Uniform over blank and two labels for 3 frames: 5 of the 27 paths read "1 2", 6 read "1".
    logits = jnp.zeros((2, 3, 3))
    labels, label_paddings = jnp.array([[1, 2], [1, 1]]), jnp.array([[0.0, 0.0], [0.0, 1.0]])
    loss = losses.ctc_loss(logits, jnp.zeros((2, 3)), labels, label_paddings)
    np.testing.assert_allclose(loss, [-np.log(5 / 27), -np.log(6 / 27)], rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "expects"),
    [
        ((jnp.zeros((3, 12)), jnp.zeros((3, 12)), jnp.zeros((3, 5), int), jnp.zeros((3, 5))),
         r"`logits` must have rank 3 \(batch, time, classes\), got shape \(3, 12\)"),
        ((jnp.zeros((3, 12, 6)), jnp.zeros((3, 12)), jnp.zeros((3,), int), jnp.zeros((3,))),
         r"`labels` must have rank 2"),
        ((jnp.zeros((3, 12, 6)), jnp.zeros((3, 12)), jnp.zeros((3, 5), int), jnp.zeros((3, 4))),
         r"`labels` and `label_paddings` must have the same shape"),
        ((jnp.zeros((3, 12, 6)), jnp.zeros((3, 11)), jnp.zeros((3, 5), int), jnp.zeros((3, 5))),
         r"`logit_paddings` must have the shape of `logits` without its class axis"),
        ((jnp.zeros((3, 12, 6)), jnp.zeros((3, 12)), jnp.zeros((2, 5), int), jnp.zeros((2, 5))),
         r"`labels` must have the batch size of `logits`"),
    ],
)  # fmt: skip
def test_bad_shapes_raise_value_error(args, expects):
    with pytest.raises(ValueError, match=expects):
        losses.ctc_loss(*args)
