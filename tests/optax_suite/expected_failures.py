"""Deliberate differences: optax tests that optim fails on purpose, each with the reason.

A key is a pytest node id (``optax/<module>.py::<Class>::<test>``) or an ``fnmatch`` pattern
over node ids. Only differences verified to be deliberate belong here; a failure that optim
should fix goes to results/known_failures.txt instead (regenerated, and expected to shrink).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

EXPECTED_FAILURES: dict[str, str] = {}


def reason(test_id: str) -> str | None:
    """Why ``test_id`` is expected to fail on optim, or None when it is not."""
    for pattern, why in EXPECTED_FAILURES.items():
        if fnmatchcase(test_id, pattern):
            return why
    return None


def is_expected(test_id: str) -> bool:
    return reason(test_id) is not None
