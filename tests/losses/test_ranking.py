"""optim.losses.ranking_softmax_loss against optax's: bitwise, values and gradients."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from losses_parity import assert_matches, normal

from optim import losses

_rng = np.random.default_rng(0)
SCORES = normal((4, 6), 1, 2.0)
LABELS = jnp.asarray(_rng.integers(0, 3, (4, 6)), jnp.float32)
WHERE = jnp.asarray(_rng.random((4, 6)) < 0.7).at[3].set(False)  # list 3 has no item
WEIGHTS = jnp.asarray(_rng.random((4, 6)), jnp.float32)


@pytest.mark.parametrize("reduce_fn", [jnp.mean, jnp.sum, None])
@pytest.mark.parametrize("masks", ["none", "where", "weights", "both"])
def test_ranking_softmax_loss_matches_optax(reduce_fn, masks):
    kwargs = {"reduce_fn": reduce_fn}
    if masks in ("where", "both"):
        kwargs["where"] = WHERE
    if masks in ("weights", "both"):
        kwargs["weights"] = WEIGHTS
    assert_matches(
        losses.ranking_softmax_loss, optax.losses.ranking_softmax_loss, SCORES, LABELS, **kwargs
    )


def test_mean_over_no_list_is_zero_but_nan_losses_stay_nan():
    nothing = jnp.zeros((4, 6), bool)
    assert float(losses.ranking_softmax_loss(SCORES, LABELS, where=nothing)) == 0.0
    assert np.isnan(losses.ranking_softmax_loss(SCORES.at[0, 0].set(jnp.nan), LABELS))


def test_integer_labels_are_cast_like_optax():
    labels = jnp.asarray(LABELS, jnp.int32)
    assert_matches(losses.ranking_softmax_loss, optax.losses.ranking_softmax_loss, SCORES, labels)


def test_integer_scores_raise_type_error():
    with pytest.raises(TypeError, match="`logits` must have a floating-point dtype"):
        losses.ranking_softmax_loss(jnp.arange(3), jnp.ones(3))
