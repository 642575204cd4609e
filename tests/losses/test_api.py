"""optim.losses has optax.losses' public names with optax's signatures, and optim exports the
loss names optax exports at its top level, no more."""

import inspect

import optax

import optim
from optim import losses

OPTAX_NAMES = sorted(n for n in dir(optax.losses) if not n.startswith("_"))


def test_every_optax_loss_name_and_no_other():
    assert len(OPTAX_NAMES) == 32
    assert losses.__all__ == sorted(losses.__all__)
    assert losses.__all__ == OPTAX_NAMES
    assert sorted(n for n in dir(losses) if not n.startswith("_")) == OPTAX_NAMES


def test_signatures_match_optax():
    """Argument names, order, kinds (keyword-only markers) and defaults, for all 32."""
    for name in OPTAX_NAMES:
        ours = inspect.signature(getattr(losses, name)).parameters
        theirs = inspect.signature(getattr(optax.losses, name)).parameters
        assert list(ours) == list(theirs), name
        for arg, param in theirs.items():
            assert ours[arg].kind == param.kind, (name, arg)
            assert ours[arg].default == param.default, (name, arg)


def test_top_level_names_are_exactly_optax_top_level_ones():
    top = {n for n in OPTAX_NAMES if hasattr(optax, n)}
    assert len(top) == 19
    for name in OPTAX_NAMES:
        assert hasattr(optim, name) == (name in top), name
        if name in top:
            assert getattr(optim, name) is getattr(losses, name)
            assert name in optim.__all__
    assert optim.losses is losses


def test_models_losses_re_exports_the_same_functions():
    import models.losses

    for name in ("squared_error", "l2_loss", "huber_loss", "softmax_cross_entropy"):
        assert getattr(models.losses, name) is getattr(losses, name)


def test_import_optim_as_optax_runs_an_optax_loss_program():
    import jax
    import jax.numpy as jnp

    def program(optax_module):
        logits = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
        labels = jnp.array([0, 2, 1, 1])
        smoothed = optax_module.smooth_labels(jax.nn.one_hot(labels, 3), 0.1)
        return (
            optax_module.softmax_cross_entropy(logits, smoothed).mean()
            + optax_module.losses.ranking_softmax_loss(logits, smoothed)
            + optax_module.l2_loss(logits).sum()
        )

    assert float(program(optim)) == float(program(optax))
