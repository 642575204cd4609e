"""Segmentation losses: the soft Dice (Tversky) loss and its binary and generalized forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from optim._keywords import suggest_keywords
from optim.losses._validation import rank, same_shape

__all__ = ["binary_dice_loss", "dice_loss", "multiclass_generalized_dice_loss"]

_REDUCTIONS = ("mean", "sum", "none")
# Keeps the inverse squared frequency of a class absent from the targets finite.
_FREQUENCY_EPSILON = 1e-7


def _check_probabilities(predictions: jax.Array) -> None:
    """A ``ValueError`` unless ``predictions`` sum to 1 over the class axis (rtol 1e-5).

    Only concrete values can be checked: under ``jit`` the check is skipped.
    """
    if isinstance(predictions, jax.core.Tracer):
        return
    sums = jnp.sum(predictions, axis=-1)
    if not jnp.allclose(sums, 1.0, rtol=1e-5):
        raise ValueError(
            "`predictions` must be valid probability distributions summing to 1 over the class "
            f"axis when apply_softmax=False, got sums in [{jnp.min(sums):.6f}, "
            f"{jnp.max(sums):.6f}]."
        )


@suggest_keywords
def dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    smooth: ArrayLike = 1.0,
    alpha: ArrayLike = 0.5,
    beta: ArrayLike = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: ArrayLike | None = None,
) -> jax.Array:
    r"""Soft Dice loss per class, with Tversky's weights on false positives and negatives.

    With :math:`p_{i,c}` the predicted probability and :math:`t_{i,c}` the target of class
    :math:`c` at pixel :math:`i`, :math:`I_c = \sum_i p_{i,c} t_{i,c}`,
    :math:`P_c = \sum_i p_{i,c}` and :math:`T_c = \sum_i t_{i,c}`:

    .. math::
      \mathrm{dice}_c = 1 - \frac{I_c + s}{I_c + \alpha (P_c - I_c) + \beta (T_c - I_c) + s}.

    :math:`\alpha = \beta = 1/2` is the Dice loss (Milletari et al., 2016, "V-Net"); a larger
    :math:`\alpha` penalises false positives more, a larger :math:`\beta` false negatives (the
    Tversky loss).

    Args:
      predictions: logits, ``[..., num_classes]`` (multi-class) or ``[..., 1]``/``[...]``
        (binary: a sigmoid instead of a softmax); probabilities if ``apply_softmax=False``.
      targets: one-hot targets of the same shape (or without the trailing 1 in the binary
        case).
      class_weights: an optional ``[num_classes]`` weight per class.
      smooth: added to numerator and denominator: no 0/0, smoother gradients.
      alpha: weight of the false positives.
      beta: weight of the false negatives.
      apply_softmax: turn logits into probabilities (softmax, or sigmoid for one class);
        ``False`` when the predictions are probabilities already (checked outside ``jit``).
      reduction: over classes: ``"mean"``, ``"sum"`` or ``"none"`` (per-class losses).
      ignore_background: leave class 0 out (when there is more than one class).
      axis: the axes summed over pixels; by default all but the first and the last.

    Returns:
      ``[...]`` (the axes left after summing over pixels), with a class axis last when
      ``reduction="none"``.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> logits = jnp.array([[1.0, -1.0], [0.5, 0.5]])
      >>> targets = jnp.array([[1.0, 0.0], [1.0, 0.0]])
      >>> print(losses.dice_loss(logits[..., None], targets[..., None]))
      [0.1344707  0.23557574]
      >>> key = jax.random.PRNGKey(0)
      >>> logits = jax.random.normal(key, (2, 4, 4, 3))
      >>> targets = jax.nn.one_hot(jax.random.randint(key, (2, 4, 4), 0, 3), 3)
      >>> losses.dice_loss(logits, targets, alpha=0.3, beta=0.7).shape
      (2,)
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {_REDUCTIONS}, got {reduction!r}.")
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    # A binary prediction or target may come without its class axis of size 1.
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    same_shape("predictions", predictions, "targets", targets)

    if apply_softmax:
        probs = (
            jax.nn.sigmoid(predictions)
            if predictions.shape[-1] == 1
            else jax.nn.softmax(predictions, axis=-1)
        )
    else:
        _check_probabilities(predictions)
        probs = predictions

    if axis is None:
        axis = tuple(range(1, probs.ndim - 1))
    intersection = jnp.sum(probs * targets, axis=axis)
    predicted, actual = jnp.sum(probs, axis=axis), jnp.sum(targets, axis=axis)
    # False positives are predicted - intersection, false negatives actual - intersection.
    denominator = (
        intersection + alpha * (predicted - intersection) + beta * (actual - intersection) + smooth
    )
    losses = 1.0 - (intersection + smooth) / denominator  # [..., classes]

    if class_weights is not None:
        rank("class_weights", jnp.asarray(class_weights), 1, "one weight per class")
        losses = losses * class_weights
    if ignore_background and probs.shape[-1] > 1:
        losses = losses[..., 1:]
    if reduction == "mean":
        return jnp.mean(losses, axis=-1)
    if reduction == "sum":
        return jnp.sum(losses, axis=-1)
    return losses


@suggest_keywords
def multiclass_generalized_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
) -> jax.Array:
    r"""Generalized Dice loss: the Dice loss with classes weighted by inverse squared frequency.

    Class :math:`c` gets the weight :math:`w_c \propto 1 / (F_c^2 + 10^{-7})`, with
    :math:`F_c` its total count in ``targets``, normalised to average 1, so rare classes count
    as much as common ones (Sudre et al., 2017, "Generalised Dice overlap as a deep learning
    loss function for highly unbalanced segmentations").

    Args:
      predictions: logits (or probabilities, see ``apply_softmax``), ``[..., num_classes]``.
      targets: one-hot targets of the same shape.
      smooth: added to numerator and denominator of each class's ratio.
      apply_softmax: apply a softmax to the predictions first.
      ignore_background: leave class 0 out.

    Returns:
      The scalar loss, averaged over classes and batch.

    Examples:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> key = jax.random.PRNGKey(0)
      >>> logits = jax.random.normal(key, (2, 4, 4, 3))
      >>> targets = jax.nn.one_hot(jax.random.randint(key, (2, 4, 4), 0, 3), 3)
      >>> losses.multiclass_generalized_dice_loss(logits, targets).shape
      ()
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    same_shape("predictions", predictions, "targets", targets)
    frequencies = jnp.sum(targets, axis=tuple(range(targets.ndim - 1)))
    weights = 1.0 / (frequencies**2 + _FREQUENCY_EPSILON)
    weights = weights / jnp.sum(weights) * len(weights)
    per_class = dice_loss(
        predictions,
        targets,
        class_weights=weights,
        smooth=smooth,
        apply_softmax=apply_softmax,
        reduction="none",
        ignore_background=ignore_background,
    )
    return jnp.mean(per_class)


@suggest_keywords
def binary_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: ArrayLike = 1.0,
    apply_sigmoid: bool = True,
) -> jax.Array:
    r"""Dice loss of a binary segmentation: ``dice_loss`` with a sigmoid and one class.

    Args:
      predictions: logits (or probabilities, see ``apply_sigmoid``), ``[...]`` or
        ``[..., 1]``.
      targets: 0/1 targets of the same shape.
      smooth: added to numerator and denominator.
      apply_sigmoid: apply a sigmoid to the predictions first.

    Returns:
      The losses, shape ``[...]`` without the pixel axes (the batch axis).

    Examples:
      >>> import jax.numpy as jnp
      >>> from optim import losses
      >>> logits = jnp.array([[4.0, -4.0, 4.0], [-4.0, 4.0, -4.0]])
      >>> print(losses.binary_dice_loss(logits, jnp.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])))
      [0.00902021 0.58709633]
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions, targets = predictions[..., None], targets[..., None]
    return dice_loss(
        predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid, reduction="mean"
    )
