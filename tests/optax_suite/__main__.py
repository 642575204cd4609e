"""Command line: ``python -m tests.optax_suite [modules...] [options]``.

Runs each named optax test module (default: all of them) on optax and on optim, each in its own
pytest process, and prints the per-module table. ``--save`` merges the runs into
results/results.json and rewrites results/summary.md; ``--update-known`` rewrites the entries of
the run modules in results/known_failures.txt.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor

from . import report
from .expected_failures import is_expected
from .runner import (
    DEFAULT_TIMEOUT_S,
    MODES,
    all_modules,
    find_module,
    module_of,
    read_known_failures,
    run_module,
    write_known_failures,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.optax_suite", description=__doc__)
    parser.add_argument("modules", nargs="*", help="e.g. alias_test contrib/_common_test")
    parser.add_argument("--mode", choices=[*MODES, "both"], default="both")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="per module, s")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="modules run at once")
    parser.add_argument("--save", action="store_true", help="update results/*.json and .md")
    parser.add_argument(
        "--update-known", action="store_true", help="rewrite results/known_failures.txt"
    )
    parser.add_argument(
        "--from-results",
        action="store_true",
        help="run nothing: report (and --save/--update-known) from results/results.json",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list failing tests")
    args = parser.parse_args(argv)

    modules = [find_module(m) for m in args.modules] or all_modules()
    modes = MODES if args.mode == "both" else (args.mode,)
    if args.update_known and args.mode != "both":
        parser.error("--update-known needs both modes (the optax baseline decides what fails)")

    def one(job):
        module, mode = job
        run = run_module(module, mode, timeout_s=args.timeout)
        print(
            f"  {module} on {mode}: {len(run.passed)}/{len(run.outcomes)} passed "
            f"in {run.seconds:.1f} s" + (" (timeout)" if run.timed_out else ""),
            file=sys.stderr,
            flush=True,
        )
        return run

    if args.from_results:
        saved = report.load()
        results = {m: saved[m] for m in modules if m in saved}
        modules = [m for m in modules if m in saved]
    else:
        jobs = [(m, mode) for m in modules for mode in modes]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            runs = list(pool.map(one, jobs))
        results = {}
        for run in runs:
            results.setdefault(run.module, {})[run.mode] = run

    rows = [report.row(m, results[m]) for m in modules]
    print(report.plain_table(rows))
    failing = report.failing_tests(results)
    if args.verbose:
        for test, outcome in sorted(failing.items()):
            print(f"{outcome['outcome']:8} {test}: {' '.join(outcome['message'].split())[:160]}")

    if args.save:
        merged = report.load()
        for module, module_runs in results.items():
            merged.setdefault(module, {}).update(module_runs)
        report.save(merged)
        report.SUMMARY_MD.write_text(report.summary_markdown(merged))
    if args.update_known:
        kept = {t for t in read_known_failures() if module_of(t) not in results}
        write_known_failures(kept | {t for t in failing if not is_expected(t)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
