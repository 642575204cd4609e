"""A misspelled keyword argument of a public function gets a suggestion: "did you mean ...?".

``@suggest_keywords`` sits directly above the ``def`` of every public function. A call with a
keyword the function does not take fails as Python makes it fail (before the body runs); the
decorator then replaces Python's message with one that names the closest argument:

>>> import optim
>>> optim.adam(learning_rte=0.1)
Traceback (most recent call last):
  ...
TypeError: adam() got an unexpected keyword argument 'learning_rte'; did you mean 'learning_rate'?

The signature is read only when a call has failed, so the decorator costs nothing at import
and one Python frame per call; ``inspect.signature``, ``help`` and doctests see the function
itself (``functools.wraps``).
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def suggest_keywords(function: F) -> F:
    """``function`` with a "did you mean" suggestion for a keyword argument it does not take."""

    @functools.wraps(function)
    def with_suggestions(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except TypeError:
            message = unexpected_keyword_message(function, kwargs)
            if message is None:
                raise
            raise TypeError(message) from None

    return with_suggestions  # type: ignore[return-value]


def unexpected_keyword_message(function: Callable[..., Any], kwargs: dict[str, Any]) -> str | None:
    """The message for the first of ``kwargs`` that ``function`` does not take (None if it
    takes them all: the TypeError came from elsewhere)."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    names = [p.name for p in parameters if p.kind in _KEYWORD_KINDS]
    unknown = next((key for key in kwargs if key not in names), None)
    if unknown is None:
        return None
    message = f"{function.__name__}() got an unexpected keyword argument {unknown!r}; "
    close = difflib.get_close_matches(unknown, names, n=1)
    if close:
        return message + f"did you mean {close[0]!r}?"
    return message + (f"it takes {', '.join(names)}" if names else "it takes no keyword arguments")
