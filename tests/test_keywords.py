"""A misspelled keyword argument of any public function gets "did you mean ...?"."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil

import pytest

import optim
from optim._keywords import suggest_keywords

KEYWORD_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def public_modules() -> list:
    """``optim`` and its public subpackages and modules (the command line is not a library)."""
    names = [m.name for m in pkgutil.iter_modules(optim.__path__)]
    return [optim] + [
        importlib.import_module(f"optim.{name}")
        for name in names
        if not name.startswith("_") and name != "cli"
    ]


def public_functions() -> dict[str, object]:
    """Every public function of optim by one of its public names (aliases counted once)."""
    found: dict[int, tuple[str, object]] = {}
    for module in public_modules():
        for name in getattr(module, "__all__", []):
            value = getattr(module, name)
            if inspect.ismodule(value) or inspect.isclass(value) or not callable(value):
                continue
            target = value.func if isinstance(value, functools.partial) else value
            if not getattr(target, "__module__", "").startswith("optim"):
                continue  # optax's own, re-exported
            found.setdefault(id(value), (f"{module.__name__}.{name}", value))
    return dict(found.values())


FUNCTIONS = public_functions()


def keyword_names(function) -> list[str] | None:
    """The names ``function`` takes by keyword, or None when it takes any (``**kwargs``)."""
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in KEYWORD_KINDS]


def test_there_are_public_functions_to_check():
    assert len(WITH_KEYWORDS) > 250 and {"optim.adam", "optim.fit"} <= set(WITH_KEYWORDS)


# Functions that take no keyword arguments (``chain(*transforms)``) or any (``**kwargs``)
# cannot be given a misspelled one.
WITH_KEYWORDS = sorted(name for name, function in FUNCTIONS.items() if keyword_names(function))


@pytest.mark.parametrize("name", WITH_KEYWORDS)
def test_a_misspelled_keyword_gets_a_suggestion(name):
    function = FUNCTIONS[name]
    for argument in keyword_names(function):
        typo = argument + argument[-1]  # a doubled last letter
        with pytest.raises(TypeError) as info:
            function(**{typo: 0})
        assert f"unexpected keyword argument {typo!r}; did you mean {argument!r}?" in str(
            info.value
        ), name


def test_the_learning_rate_typo():
    with pytest.raises(TypeError, match=r"did you mean 'learning_rate'\?"):
        optim.adam(learning_rte=0.1)


def test_no_close_name_lists_the_arguments():
    with pytest.raises(
        TypeError, match="unexpected keyword argument 'zzz'; it takes learning_rate"
    ):
        optim.sgd(0.1, zzz=1)


def test_other_type_errors_pass_through_unchanged():
    """A TypeError raised inside the function (all keywords known) is the function's own."""

    @suggest_keywords
    def needs_int(n):
        raise TypeError(f"n must be an int, got {type(n).__name__}")

    with pytest.raises(TypeError, match="n must be an int, got str"):
        needs_int(n="three")


def test_the_function_is_seen_through_the_decorator():
    assert inspect.signature(optim.adam).parameters["learning_rate"]
    assert optim.adam.__name__ == "adam" and "Adam" in optim.adam.__doc__
