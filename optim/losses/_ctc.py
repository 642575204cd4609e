"""Connectionist temporal classification (CTC) loss (Graves et al., 2006).

The forward (alpha) recursion runs in log space over the blank-interleaved label sequence,
with ``lax.scan`` over time. Two score tables are carried per sequence:

* ``blank[b, n]`` (``n = 0..N``): the log-probability of the prefixes that have emitted the
  first ``n`` labels and now sit in the blank state after them;
* ``label[b, n]`` (``n = 0..N-1``): the log-probability of the prefixes whose last frame emits
  label ``n``.

``log_epsilon`` stands in for :math:`\\log 0` so that the arithmetic stays finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim.losses._validation import rank, same_shape

__all__ = ["ctc_loss", "ctc_loss_with_forward_probs"]


def _entry(table: jax.Array, index: jax.Array, num: int) -> jax.Array:
    """``table[b, ..., index[b, n]]`` along the last axis, and 0 where the index is outside
    ``[0, num)`` (as a product with ``one_hot(index, num)`` would give, without its cost)."""
    valid = (index >= 0) & (index < num)
    picked = jnp.take_along_axis(table, jnp.clip(index, 0, num - 1), axis=-1)
    return jnp.where(valid, picked, 0.0)


def _log_add_after_first(blank: jax.Array, score: jax.Array) -> jax.Array:
    """``blank`` with ``score[:, n]`` added (in log space) to ``blank[:, n + 1]``: the move
    from label ``n`` into the blank state after it."""
    return jnp.concatenate([blank[:, :1], jnp.logaddexp(blank[:, 1:], score)], axis=-1)


@suggest_keywords
def ctc_loss_with_forward_probs(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: ArrayLike = -1e5,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""CTC loss and the forward log-probabilities of the blank and label states.

    CTC sums the probability of every frame-level alignment :math:`\pi` (labels and a blank
    symbol :math:`\phi`, repeats merged) that reads as the label sequence; the loss is
    :math:`-\log` of that sum (Graves et al., 2006, "Connectionist temporal classification:
    labelling unsegmented sequence data with recurrent neural networks"). The forward
    variables returned are

    .. math::
      \alpha_{\mathrm{BLANK}}(t, n) = \sum_{\pi_{1:t-1}} p(\pi_t = \phi \mid \ldots),\qquad
      \alpha_{\mathrm{LABEL}}(t, n) = \sum_{\pi_{1:t-1}} p(\pi_t = y_n \mid \ldots),

    in log space.

    Args:
      logits: ``(B, T, K)`` logits per frame over the ``K`` classes, the blank included.
      logit_paddings: ``(B, T)``, 1.0 where a frame is padding and 0.0 where it is real.
      labels: ``(B, N)`` integer label sequences.
      label_paddings: ``(B, N)``, 1.0 where a label is padding; the labels must be
        right-padded (each row is zeros, then ones).
      blank_id: the class index of the blank symbol.
      log_epsilon: the stand-in for :math:`\log 0`.

    Returns:
      ``(loss, logalpha_blank, logalpha_label)``: the ``(B,)`` losses and two ``(T, B, N + 1)``
      and ``(T, B, N)`` tables of :math:`\log \alpha`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> logits = jnp.zeros((1, 3, 3))  # uniform over blank and two labels, 3 frames
      >>> loss, blank, label = losses.ctc_loss_with_forward_probs(
      ...     logits, jnp.zeros((1, 3)), jnp.array([[1, 2]]), jnp.zeros((1, 2)))
      >>> print(loss, blank.shape, label.shape)  # 5 of the 27 paths read "1 2"
      [1.686399] (3, 1, 3) (3, 1, 2)
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    logit_paddings, label_paddings = jnp.asarray(logit_paddings), jnp.asarray(label_paddings)
    rank("logits", logits, 3, "batch, time, classes")
    rank("labels", labels, 2, "batch, label positions")
    same_shape("labels", labels, "label_paddings", label_paddings)
    if logit_paddings.shape != logits.shape[:2]:
        raise ValueError(
            "`logit_paddings` must have the shape of `logits` without its class axis, got "
            f"logits: {logits.shape} and logit_paddings: {logit_paddings.shape}."
        )
    batch_size, _, num_classes = logits.shape
    if labels.shape[0] != batch_size:
        raise ValueError(
            f"`labels` must have the batch size of `logits`, got logits: {logits.shape} and "
            f"labels: {labels.shape}."
        )
    num_labels = labels.shape[1]

    log_probs = jax.nn.log_softmax(logits)
    label_lengths = num_labels - jnp.sum(label_paddings, axis=1).astype(jnp.int32)
    # repeat[b, n]: label n + 1 equals label n, so a path must pass a blank between them.
    repeat = jnp.pad((labels[:, :-1] == labels[:, 1:]).astype(jnp.float32), ((0, 0), (0, 1)))
    # Time-major inputs of the scan. A label's log-probability is read off by index; an index
    # outside [0, K) (some padding conventions) reads 0, as a one-hot product would.
    blank_log_probs = jnp.transpose(log_probs[:, :, blank_id : blank_id + 1], (1, 0, 2))
    # (In the precision of a product with a default-dtype one-hot: bfloat16 logits give
    # float32 scores, as do the float32 initial tables below.)
    one_hot_dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    label_log_probs = _entry(log_probs, labels[:, None, :], num_classes).astype(
        jnp.promote_types(log_probs.dtype, one_hot_dtype)
    )
    label_log_probs = jnp.transpose(label_log_probs, (1, 0, 2))
    frame_paddings = jnp.transpose(logit_paddings, (1, 0))

    # Before the first frame: only the empty prefix (blank state 0) is possible.
    blank_init = (jnp.ones((batch_size, num_labels + 1)) * log_epsilon).at[:, 0].set(0.0)
    label_init = jnp.ones((batch_size, num_labels)) * log_epsilon

    def advance(carry, frame):
        blank, label = carry
        label_lp, blank_lp, padding = frame
        # Leaving label n for the blank state after it costs nothing, except before a repeat,
        # which the next label may not follow directly.
        reachable = _log_add_after_first(blank, label + log_epsilon * repeat)
        # Emit label n: after the blank state before it, or again after itself.
        new_label = jnp.logaddexp(reachable[:, :-1] + label_lp, label + label_lp)
        # Emit a blank: stay in a blank state, or (before a repeat only) leave label n for it.
        new_blank = _log_add_after_first(
            reachable + blank_lp, label + blank_lp + log_epsilon * (1.0 - repeat)
        )
        # A padded frame changes nothing.
        padding = padding.reshape((batch_size, 1))
        new_label = padding * label + (1.0 - padding) * new_label
        new_blank = padding * blank + (1.0 - padding) * new_blank
        return (new_blank, new_label), (new_blank, new_label)

    _, (log_alpha_blank, log_alpha_label) = jax.lax.scan(
        advance, (blank_init, label_init), (label_log_probs, blank_log_probs, frame_paddings)
    )
    # After the last frame, a path that ends on label n also counts in blank state n + 1.
    final = _log_add_after_first(log_alpha_blank[-1], log_alpha_label[-1])
    log_alpha_blank = log_alpha_blank.at[-1].set(final)
    loss = -_entry(final, label_lengths[:, None], num_labels + 1)[:, 0]
    return loss, log_alpha_blank, log_alpha_label


@suggest_keywords
def ctc_loss(
    logits: ArrayLike,
    logit_paddings: ArrayLike,
    labels: ArrayLike,
    label_paddings: ArrayLike,
    *,
    blank_id: int = 0,
    log_epsilon: ArrayLike = -1e5,
) -> jax.Array:
    r"""CTC loss: :math:`-\log` of the total probability of the alignments of each sequence.

    See ``ctc_loss_with_forward_probs``, which also returns the forward variables.

    Args:
      logits: ``(B, T, K)`` logits per frame over the ``K`` classes, the blank included.
      logit_paddings: ``(B, T)``, 1.0 where a frame is padding and 0.0 where it is real.
      labels: ``(B, N)`` integer label sequences.
      label_paddings: ``(B, N)``, 1.0 where a label is padding (right-padded).
      blank_id: the class index of the blank symbol.
      log_epsilon: the stand-in for :math:`\log 0`.

    Returns:
      The ``(B,)`` losses.

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> logits = jnp.zeros((2, 3, 3))
      >>> labels, label_paddings = jnp.array([[1, 2], [1, 1]]), jnp.array([[0, 0], [0, 1]])
      >>> # 5 of the 27 equally likely paths read "1 2", 6 read "1"
      >>> print(losses.ctc_loss(logits, jnp.zeros((2, 3)), labels, label_paddings))
      [1.686399  1.5040774]
    """
    loss, _, _ = ctc_loss_with_forward_probs(
        logits, logit_paddings, labels, label_paddings, blank_id=blank_id, log_epsilon=log_epsilon
    )
    return loss
