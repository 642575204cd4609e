"""The progress bar ``fit`` shows between chunks, and when it shows one by default."""

from __future__ import annotations

import sys
from typing import Any


def interactive() -> bool:
    """Whether someone is watching: a notebook kernel, or standard error on a terminal. It is
    ``fit``'s default for ``progress``; ``FitResult.path.progress`` says what was chosen."""
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(total: int | None, start: int) -> Any:
    # tqdm is imported by the first bar only: `import optim` stays light.
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
