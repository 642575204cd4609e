"""Deliberate differences: optax tests that optim fails on purpose, each with the reason.

A key is a pytest node id (``optax/<module>.py::<Class>::<test>``) or an ``fnmatch`` pattern
over node ids. Only differences verified to be deliberate belong here; a failure that optim
should fix goes to results/known_failures.txt instead (regenerated, and expected to shrink).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

_F32_STATE = (
    "bf16 parameters get float32 state slots unless a *_dtype argument asks for less "
    "(README: 'Moments of bf16/fp16 parameters are kept in float32'); optax keeps bf16"
)
_F32_HYPER = (
    "injected hyperparameters are float32 arrays whatever the parameter or given dtype "
    "(README: 'Hyperparameters and the optimizer's arithmetic are float32'); optax follows "
    "the parameters' dtype"
)

_EARLY = (
    "optim checks arguments when the transformation is built (DESIGN: fail loudly and early, "
    "naming the argument); optax checks at init or update, inside the test's assertRaises"
)
_INTEGER_GRADS = (
    "integer gradient arrays are a TypeError naming the leaf (README: an optimizer cannot "
    "move an integer parameter, and an integer gradient would silently be dropped); optax "
    "computes with them"
)

EXPECTED_FAILURES: dict[str, str] = {
    "optax/_src/combine_test.py::PartitionTest::test_labels_mismatch2": _EARLY,
    "optax/transforms/_combining_test.py::PartitionTest::test_labels_mismatch2": _EARLY,
    "optax/_src/transform_test.py::TransformTest::test_lion_invalid_mode_raises": _EARLY,
    "optax/transforms/_clipping_test.py::ClippingTest::test_per_example_global_norm_clip": (
        _INTEGER_GRADS
    ),
    "optax/schedules/_inject_test.py::InjectHyperparamsTest::"
    "test_inject_hyperparams_starts_with_step_count_zero": _INTEGER_GRADS,
    # params_dtype='bfloat16', state_dtype=None, for sgd_mom, adam, adamw.
    "optax/_src/alias_test.py::AliasTest::test_explicit_dtype9": _F32_STATE,
    "optax/_src/alias_test.py::AliasTest::test_explicit_dtype10": _F32_STATE,
    "optax/_src/alias_test.py::AliasTest::test_explicit_dtype11": _F32_STATE,
    # params_dtype='bfloat16', state_dtype=None: schedule-free's z.
    "optax/contrib/_schedule_free_test.py::ScheduleFreeTest::test_explicit_dtype3": _F32_STATE,
    # asserts scale_by_adam's nu is bf16 for bf16 parameters.
    "optax/contrib/_galore_test.py::GaLoreTest::test_mu_dtype_controls_moment_dtype": _F32_STATE,
    "optax/schedules/_inject_test.py::InjectHyperparamsTest::test_hyperparam_default_dtype_bf16": (
        _F32_HYPER
    ),
    # the f32 case also asserts that a bfloat16 array given as b2 stays bfloat16.
    "optax/schedules/_inject_test.py::InjectHyperparamsTest::test_hyperparam_default_dtype_f32": (
        _F32_HYPER
    ),
}


def reason(test_id: str) -> str | None:
    """Why ``test_id`` is expected to fail on optim, or None when it is not."""
    for pattern, why in EXPECTED_FAILURES.items():
        if fnmatchcase(test_id, pattern):
            return why
    return None


def is_expected(test_id: str) -> bool:
    return reason(test_id) is not None
