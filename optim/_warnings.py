"""Warnings that point at the user's line: the first calling frame outside this library.

A fixed ``stacklevel`` names the wrong line as soon as the call passes through one more frame
of ours (a public function's keyword-checking wrapper, a factory that calls another, ``fit``
calling the checkpoint code), and ``pytest``'s ``error::DeprecationWarning:optim.*`` filter
would then turn a deprecation meant for the user into an error inside the library.
"""

from __future__ import annotations

import sys
import warnings


def warn_user(message: str, category: type[Warning] = UserWarning, stacklevel: int = 2) -> None:
    """``warnings.warn(message, category)`` attributed to the first frame outside ``optim``.

    ``stacklevel`` counts from there as ``warnings.warn``'s does from its caller: 2 (the
    default) names the first frame outside ``optim``, 3 the one above it, and so on.
    """
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and _in_library(frame):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + stacklevel - 2)


def _in_library(frame) -> bool:
    name = frame.f_globals.get("__name__", "")
    return name == "optim" or name.startswith("optim.")
