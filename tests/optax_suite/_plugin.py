"""pytest plugin loaded (``-p``) into the process that runs one optax test module.

Environment:

* ``OPTAX_SUITE_MODE``: ``optim`` installs the proxies of :mod:`._proxy` before any test module
  is imported; ``optax`` (the baseline) changes nothing.
* ``OPTAX_SUITE_OUT``: a file that receives one JSON line per finished test as it finishes (so
  a module stopped by its timeout still reports what ran), then one ``summary`` line with the
  proxies' record.
"""

from __future__ import annotations

import json
import os

import pytest

from . import _proxy

_OUT = os.environ.get("OPTAX_SUITE_OUT")
_MODE = os.environ.get("OPTAX_SUITE_MODE", "optax")
_MESSAGE_CHARS = 400

if _MODE == "optim":
    _proxy.install()


def _write(line: dict) -> None:
    if _OUT:
        with open(_OUT, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def _message(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    elif isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        text = str(report.longrepr[2])
    else:
        text = str(report.longrepr or "")
    return text[:_MESSAGE_CHARS]


_outcomes: dict[str, dict] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _proxy.RECORD.current_test = item.nodeid
    yield
    _proxy.RECORD.current_test = _proxy.COLLECTION
    outcome = _outcomes.pop(item.nodeid, {"outcome": "error", "message": "no report"})
    _write({"test": item.nodeid, **outcome})


def pytest_runtest_logreport(report):
    """One outcome per test from its three phases: an error in setup or teardown is ``error``."""
    current = _outcomes.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
    if report.skipped and current["outcome"] == "passed":
        current.update(outcome="skipped", message=_message(report))
    elif report.failed:
        outcome = "failed" if report.when == "call" else "error"
        if current["outcome"] in ("passed", "skipped"):
            current.update(outcome=outcome, message=_message(report))
    current["seconds"] = current.get("seconds", 0.0) + report.duration


def pytest_collectreport(report):
    if report.failed:
        _write({"test": report.nodeid, "outcome": "error", "message": _message(report)})


def pytest_sessionfinish(session, exitstatus):
    _write({"summary": True, "mode": _MODE, **_proxy.RECORD.as_json()})
