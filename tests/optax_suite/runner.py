"""Run optax's own test modules, each in its own pytest subprocess, on optax or on optim.

A *module* is named by its path under the installed optax package without ``.py``:
``_src/alias_test``, ``contrib/_common_test``, ``optax_test``. A *test id* is pytest's node id
with the package directory as root: ``optax/_src/alias_test.py::AliasTest::test_x0``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import optax

OPTAX_DIR = Path(optax.__file__).resolve().parent
SITE_PACKAGES = OPTAX_DIR.parent
SUITE_DIR = Path(__file__).resolve().parent
TESTS_DIR = SUITE_DIR.parent
REPO_ROOT = TESTS_DIR.parent
RESULTS_DIR = SUITE_DIR / "results"
KNOWN_FAILURES = RESULTS_DIR / "known_failures.txt"

MODES = ("optax", "optim")
DEFAULT_TIMEOUT_S = 900.0

# Measured on a loaded 2-core machine (results/README.md): the modules over about a minute in
# either mode there, alias_test and contrib/_common_test first. tests/test_optax_suite.py marks
# these slow.
SLOW_MODULES = frozenset(
    {
        "_src/alias_test",
        "contrib/_common_test",
        "_src/float64_test",
        "_src/linear_algebra_test",
        "_src/linesearch_test",
        "_src/numerics_test",
        "_src/utils_test",
        "assignment/_hungarian_algorithm_test",
        "contrib/_galore_test",
        "contrib/_muon_test",
        "contrib/_privacy_test",
        "losses/_classification_test",
        "losses/_segmentation_test",
        "microbatching/_microbatching_test",
        "perturbations/_make_pert_test",
        "projections/_projections_test",
        "transforms/_accumulation_test",
    }
)


def all_modules() -> list[str]:
    """Every test module optax ships, sorted."""
    return sorted(
        str(p.relative_to(OPTAX_DIR).with_suffix("")) for p in OPTAX_DIR.rglob("*_test.py")
    )


def find_module(name: str) -> str:
    """A module from its full name or any unambiguous suffix: ``alias_test``, ``_common_test``."""
    name = name.removesuffix(".py").replace(".", "/").removeprefix("optax/")
    modules = all_modules()
    if name in modules:
        return name
    matches = [m for m in modules if m.endswith("/" + name) or m.split("/")[-1] == name]
    if len(matches) != 1:
        raise ValueError(f"{name!r} names {len(matches)} optax test modules: {matches}")
    return matches[0]


def module_of(test_id: str) -> str:
    return test_id.split("::", 1)[0].removeprefix("optax/").removesuffix(".py")


@dataclass
class ModuleRun:
    """The outcome of one module in one mode.

    ``outcomes`` maps test id -> ``{"outcome": passed|failed|error|skipped, "message": ...}``.
    ``fallbacks``/``resolved`` are the proxies' records (empty for the optax baseline).
    """

    module: str
    mode: str
    seconds: float
    returncode: int | None
    timed_out: bool
    outcomes: dict = field(default_factory=dict)
    fallbacks: list = field(default_factory=list)
    resolved: list = field(default_factory=list)
    missing_optim_modules: list = field(default_factory=list)
    stderr_tail: str = ""

    def ids_with(self, outcome: str) -> set[str]:
        return {t for t, o in self.outcomes.items() if o["outcome"] == outcome}

    @property
    def passed(self) -> set[str]:
        return self.ids_with("passed")

    @property
    def tests_with_fallback(self) -> set[str]:
        """Tests that used an optax fallback while running (module-level uses not included)."""
        from ._proxy import COLLECTION

        return {t for f in self.fallbacks for t in f["tests"] if t != COLLECTION}

    def compact(self) -> dict:
        """What results.json keeps: messages of the tests that did not pass, counts of users."""
        data = dataclasses.asdict(self)
        data["outcomes"] = {
            t: o if o["outcome"] != "passed" else {"outcome": "passed"}
            for t, o in self.outcomes.items()
        }
        data["resolved"] = [
            {**r, "tests": r["tests"] if isinstance(r["tests"], int) else len(r["tests"])}
            for r in self.resolved
        ]
        return data


def _environment(mode: str, out: Path) -> dict:
    env = dict(os.environ)
    # The tests' own .pyc files (and pytest's rewritten ones) stay out of the installed package.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    path = [str(REPO_ROOT), str(TESTS_DIR)]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["OPTAX_SUITE_MODE"] = mode
    env["OPTAX_SUITE_OUT"] = str(out)
    return env


def run_module(
    module: str,
    mode: str,
    *,
    test_ids: list[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ModuleRun:
    """Run one optax test module (or only ``test_ids`` of it) in a fresh pytest process."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = OPTAX_DIR / f"{module}.py"
    if not path.is_file():
        raise ValueError(f"no optax test module {module!r} (looked for {path})")
    targets = [str(SITE_PACKAGES / t) for t in test_ids] if test_ids else [str(path)]
    with tempfile.TemporaryDirectory(prefix="optax_suite_") as tmp:
        out = Path(tmp) / "results.jsonl"
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")  # none of this repository's options (markers, addopts)
        command = [
            sys.executable,
            "-m",
            "pytest",
            *targets,
            "-c",
            str(ini),
            "--rootdir",
            str(SITE_PACKAGES),
            "-p",
            "optax_suite._plugin",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-q",
            "--no-header",
            "-rN",
            "--tb=no",
        ]
        start = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=tmp,
            env=_environment(mode, out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so a timeout can stop the whole process group
        )
        timed_out = False
        try:
            _, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
        except BaseException:  # e.g. Ctrl-C: the module's process group must not outlive us
            os.killpg(process.pid, signal.SIGKILL)
            raise
        seconds = time.monotonic() - start
        lines = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    run = ModuleRun(
        module, mode, seconds, process.returncode, timed_out, stderr_tail=stderr[-2000:]
    )
    for line in lines:
        if line.get("summary"):
            run.fallbacks = line["fallbacks"]
            run.resolved = line["resolved"]
            run.missing_optim_modules = line["missing_optim_modules"]
        else:
            run.outcomes[line["test"]] = {k: v for k, v in line.items() if k != "test"}
    if not lines and not timed_out:
        # pytest died before reporting anything: one error entry so the module is not silent.
        run.outcomes[f"optax/{module}.py"] = {"outcome": "error", "message": stderr[-400:]}
    return run


def regressions(baseline: ModuleRun, ours: ModuleRun) -> dict[str, dict]:
    """Tests that pass on optax and do not pass on optim (absent counts: e.g. a timeout)."""
    missing = {"outcome": "missing", "message": "not reported on optim (timeout or crash)"}
    return {
        t: ours.outcomes.get(t, missing)
        for t in sorted(baseline.passed)
        if ours.outcomes.get(t, missing)["outcome"] != "passed"
    }


def read_known_failures(path: Path = KNOWN_FAILURES) -> set[str]:
    if not path.exists():
        return set()
    lines = (line.strip() for line in path.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def write_known_failures(ids: set[str], path: Path = KNOWN_FAILURES) -> None:
    header = (
        "# optax tests that pass on optax and fail on optim today, not deliberate differences.\n"
        "# One pytest node id a line; regenerate with `python -m tests.optax_suite --update-known`."
        "\n# tests/test_optax_suite.py fails on a failure missing here and on an id here that"
        " passes.\n"
    )
    path.write_text(header + "".join(f"{t}\n" for t in sorted(ids)))


@dataclass
class Check:
    """What tests/test_optax_suite.py asserts for one module (empty lists: all is well)."""

    new_failures: dict  # test id -> outcome on optim: passes on optax, not known nor deliberate
    now_passing: list  # known failures (or deliberate differences) that pass on optim
    stale: list  # known failures the run no longer reports at all (renamed or removed tests)
    optim_run: ModuleRun


def check_module(module: str, known: set[str], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """Run ``module`` on optim; confirm any unlisted failure on the optax baseline.

    Only the unlisted failures are run again on optax (usually none), which keeps the check
    to one run of the module.
    """
    from .expected_failures import is_expected

    ours = run_module(module, "optim", timeout_s=timeout_s)
    # A skip counts too: a test optax runs and optim skips has checked nothing.
    not_passing = {t: o for t, o in ours.outcomes.items() if o["outcome"] != "passed"}
    candidates = sorted(t for t in not_passing if t not in known and not is_expected(t))
    new_failures = {}
    if candidates:
        tests = [t for t in candidates if "::" in t]
        # No test ids: the module itself failed to load on optim; does it load on optax?
        baseline = run_module(module, "optax", test_ids=tests or None, timeout_s=timeout_s)
        for test in candidates:
            if test in baseline.passed or ("::" not in test and baseline.passed):
                new_failures[test] = not_passing[test]
    mine = {t for t in known if module_of(t) == module}
    now_passing = sorted(t for t in mine if ours.outcomes.get(t, {}).get("outcome") == "passed")
    now_passing += sorted(
        t for t, o in ours.outcomes.items() if o["outcome"] == "passed" and is_expected(t)
    )
    loaded = not ours.timed_out and all("::" in t for t in not_passing)
    stale = sorted(t for t in mine if t not in ours.outcomes) if loaded else []
    return Check(new_failures, now_passing, stale, ours)
