"""Losses with optax's names, signatures and numbers: ``optim.losses`` is ``optax.losses``.

Every loss returns unreduced values (one per element, example or list; take ``.mean()``
yourself) except where optax reduces too (``ntxent``, ``ranking_softmax_loss``,
``multiclass_generalized_dice_loss``). Bad input raises an error naming the argument: a
non-floating ``logits``/``predictions`` a ``TypeError``, shapes that cannot be combined a
``ValueError`` with both shapes. Shapes that broadcast are accepted wherever optax accepts
them.

The names optax also exports at its top level (``optax.softmax_cross_entropy``,
``optax.l2_loss``, ...) are exported by ``optim`` too.
"""

from optim.losses._cross_entropy import (
    poly_loss_cross_entropy,
    safe_softmax_cross_entropy,
    sigmoid_binary_cross_entropy,
    sigmoid_focal_loss,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)
from optim.losses._ctc import ctc_loss, ctc_loss_with_forward_probs
from optim.losses._divergence import (
    convex_kl_divergence,
    generalized_kl_divergence,
    kl_divergence,
    kl_divergence_with_log_targets,
)
from optim.losses._fenchel_young import make_fenchel_young_loss
from optim.losses._margin import (
    hinge_loss,
    multiclass_hinge_loss,
    multiclass_perceptron_loss,
    multiclass_sparsemax_loss,
    perceptron_loss,
    sparsemax_loss,
)
from optim.losses._ranking import ranking_softmax_loss
from optim.losses._regression import (
    cosine_distance,
    cosine_similarity,
    huber_loss,
    l2_loss,
    log_cosh,
    squared_error,
)
from optim.losses._segmentation import (
    binary_dice_loss,
    dice_loss,
    multiclass_generalized_dice_loss,
)
from optim.losses._self_supervised import ntxent, triplet_margin_loss
from optim.losses._smoothing import smooth_labels

__all__ = [
    "binary_dice_loss",
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "dice_loss",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "l2_loss",
    "log_cosh",
    "make_fenchel_young_loss",
    "multiclass_generalized_dice_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multiclass_sparsemax_loss",
    "ntxent",
    "perceptron_loss",
    "poly_loss_cross_entropy",
    "ranking_softmax_loss",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sparsemax_loss",
    "squared_error",
    "triplet_margin_loss",
]
