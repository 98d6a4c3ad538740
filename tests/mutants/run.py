"""`make mutants`: run the test suite against every planted bug of tests/mutants/mutants.toml.

For each mutant: copy the repository (engine/, adapters/, tests/, diagrams/, pyproject.toml,
README.md; not .venv) into a temporary directory, apply its textual patch there, and run its
test selection with the worktree's .venv python and HYPOTHESIS_PROFILE=dev, stopping at the
first failure (-x), within a timeout. KILLED when the tests fail, SURVIVED when they pass,
STALE when the patch no longer applies (its snippet is gone or ambiguous), ERROR when the run
itself went wrong (nothing collected, the copy imported the worktree's engine...).

First a baseline: the same selections on an unmutated copy. Tests that already fail there
(today: tests being rewritten on other branches) cannot kill anything, so they are deselected
(a file that does not import is ignored) and listed; otherwise every mutant would look killed.

    python -m tests.mutants.run            # all, 2 workers; exit 1 unless every mutant is killed
    python -m tests.mutants.run --list     # the catalog
    python -m tests.mutants.run --only pool-cooldown-shortens --only bounds-infinite
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tests.mutants.catalog import Mutant, apply, load

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("engine", "adapters", "tests", "diagrams", "pyproject.toml", "README.md")
IGNORED = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache", "*.pyc")
DEFAULT_TESTS = (
    "tests/test_decisions.py",
    "tests/test_js_defects.py",
    "tests/test_pool.py",
    "tests/test_spec.py",
    "tests/test_table.py",
    "tests/test_runner.py",
    "tests/test_properties.py",
    "tests/test_trace_corpus.py",
)
#: Never run against a mutant: it checks that every snippet occurs in engine/, which a mutated
#: copy fails by construction (every mutant would look killed).
NEVER = "tests/test_mutants.py"
PLUGIN = "tests.mutants.report_plugin"
KILLED, SURVIVED, STALE, ERROR, TIMEOUT = "KILLED", "SURVIVED", "STALE", "ERROR", "TIMEOUT"


@dataclass(slots=True)
class Run:
    """One pytest run in a copy."""

    returncode: int | None  # None: timed out
    seconds: float
    report: dict[str, object]
    tail: str


@dataclass(slots=True)
class Result:
    mutant: Mutant
    status: str
    seconds: float = 0.0
    detail: str = ""
    tail: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def killed(self) -> bool:
        return self.status in (KILLED, TIMEOUT)


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def selection(mutant: Mutant) -> list[str]:
    files = list(dict.fromkeys([*mutant.tests, *DEFAULT_TESTS]))
    if NEVER in files:
        raise SystemExit(f"{mutant.id}: {NEVER} cannot judge a mutant")
    return files


def copy_tree(dest: Path) -> None:
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORED)
        else:
            shutil.copy2(src, dest / name)


def run_pytest(root: Path, args: Sequence[str], timeout: float) -> Run:
    """Run pytest in the copy at `root` (its own process group, killed on timeout)."""
    report_path = root / ".mutant-report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HYPOTHESIS_"))}
    env.update(
        HYPOTHESIS_PROFILE="dev",
        MUTANTS_REPORT=str(report_path),
        PYTHONPATH=str(root),
        PYTHONDONTWRITEBYTECODE="1",
    )
    cmd = [python(), "-m", "pytest", "-p", PLUGIN, "-p", "no:cacheprovider", *args]
    started = time.monotonic()
    with (root / ".mutant-pytest.log").open("w+") as log:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this call started, nothing else
            proc.wait()
            code = None
        log.seek(0)
        tail = "".join(log.readlines()[-25:])
    report: dict[str, object] = {}
    if report_path.exists():
        report = json.loads(report_path.read_text())
    return Run(code, time.monotonic() - started, report, tail)


@dataclass(slots=True)
class Baseline:
    ignore: list[str]
    deselect: list[str]
    seconds: float

    def args(self, files: Iterable[str]) -> list[str]:
        """pytest's arguments for `files` without what fails unmutated."""
        return [
            *(f"--deselect={n}" for n in self.deselect),
            *(f for f in files if f not in self.ignore),
        ]


def baseline(files: Iterable[str], timeout: float) -> Baseline:
    """Run the selections on an unmutated copy; what fails there is excluded from every run."""
    with tempfile.TemporaryDirectory(prefix="interlock-mutant-baseline-") as tmp:
        root = Path(tmp)
        copy_tree(root)
        run = run_pytest(root, ["--continue-on-collection-errors", *files], timeout)
        engine = str(run.report.get("engine") or "")
        if run.returncode is None:
            raise SystemExit(f"baseline: timed out after {timeout:.0f} s\n{run.tail}")
        if not engine.startswith(str(root)):
            raise SystemExit(f"baseline: the copy imported engine from {engine!r}\n{run.tail}")
        if run.returncode not in (0, 1, 2):
            raise SystemExit(f"baseline: pytest exited {run.returncode}\n{run.tail}")
    ignore = [str(n).split("::")[0] for n in run.report.get("collect_errors", []) if n]  # type: ignore[union-attr]
    deselect = [str(n) for n in run.report.get("failed", [])]  # type: ignore[union-attr]
    return Baseline(sorted(set(ignore)), deselect, run.seconds)


def judge(mutant: Mutant, base: Baseline, timeout: float, keep: bool) -> Result:
    tmp = Path(tempfile.mkdtemp(prefix=f"interlock-mutant-{mutant.id}-"))
    try:
        copy_tree(tmp)
        problems = apply(tmp, mutant)
        if problems:
            return Result(mutant, STALE, detail="; ".join(problems))
        args = ["-x", *base.args(selection(mutant))]
        run = run_pytest(tmp, args, timeout)
        engine = str(run.report.get("engine") or "")
        failed = [str(n) for n in run.report.get("failed", [])]  # type: ignore[union-attr]
        errors = [str(n) for n in run.report.get("collect_errors", []) if n]  # type: ignore[union-attr]
        if run.returncode is None:
            return Result(mutant, TIMEOUT, run.seconds, f"no result within {timeout:.0f} s")
        if engine and not engine.startswith(str(tmp)):
            return Result(mutant, ERROR, run.seconds, f"imported engine from {engine}", run.tail)
        if run.returncode == 0:
            return Result(mutant, SURVIVED, run.seconds)
        if run.returncode == 1 and failed:
            return Result(mutant, KILLED, run.seconds, failed[0])
        if run.returncode in (1, 2) and errors:
            return Result(mutant, KILLED, run.seconds, f"{errors[0]} (does not import)")
        return Result(mutant, ERROR, run.seconds, f"pytest exited {run.returncode}", run.tail)
    finally:
        if keep:
            print(f"  kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def show_list(mutants: list[Mutant]) -> None:
    for m in mutants:
        inv = f"inv {m.invariant}" if m.invariant else "behaviour"
        print(f"{m.id:45} {inv:9} {m.description}")
        print(f"{'':45} {'':9} caught by: {m.catches}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="ID")
    parser.add_argument("--list", action="store_true", help="print the catalog and exit")
    parser.add_argument("--jobs", "-j", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copies")
    opts = parser.parse_args(argv)

    version, mutants = load()
    if opts.only:
        unknown = set(opts.only) - {m.id for m in mutants}
        if unknown:
            parser.error(f"unknown mutant: {', '.join(sorted(unknown))}")
        mutants = [m for m in mutants if m.id in opts.only]
    if opts.list:
        show_list(mutants)
        print(f"{len(mutants)} mutants (catalog version {version})")
        return 0

    started = time.monotonic()
    files = list(dict.fromkeys(f for m in mutants for f in selection(m)))
    print(f"baseline: {len(files)} test files on an unmutated copy ...", flush=True)
    base = baseline(files, opts.timeout)
    print(f"baseline: {base.seconds:.1f} s", flush=True)
    for path in base.ignore:
        print(f"  ignored (does not import on an unmutated copy): {path}")
    if base.deselect:
        by_file: dict[str, int] = {}
        for node in base.deselect:
            by_file[node.split("::")[0]] = by_file.get(node.split("::")[0], 0) + 1
        for path, n in by_file.items():
            print(f"  deselected (fail on an unmutated copy): {n} tests of {path}")
    print(f"{len(mutants)} mutants, {opts.jobs} workers ...", flush=True)

    results: dict[str, Result] = {}
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        futures = [pool.submit(judge, m, base, opts.timeout, opts.keep) for m in mutants]
        for done, future in enumerate(as_completed(futures), 1):
            r = future.result()
            results[r.mutant.id] = r
            status = "KILLED" if r.status == TIMEOUT else r.status
            note = f"timeout: {r.detail}" if r.status == TIMEOUT else r.detail
            print(
                f"[{done:2}/{len(mutants)}] {status:8} {r.mutant.id:42} {r.seconds:5.1f} s  {note}",
                flush=True,
            )
            if r.status == ERROR and r.tail:
                print("    " + r.tail.replace("\n", "\n    "))

    ordered = [results[m.id] for m in mutants]
    killed = sum(r.killed for r in ordered)
    survivors = [r for r in ordered if not r.killed]
    if survivors:
        print("\nnot killed:")
        for r in survivors:
            print(f"  {r.status:8} {r.mutant.id}: {r.mutant.description}")
            print(f"           should be caught by: {r.mutant.catches}")
    elapsed = time.monotonic() - started
    print(
        f"\n{killed} of {len(ordered)} mutants killed ({elapsed:.0f} s, catalog version {version})"
    )
    return 0 if killed == len(ordered) else 1


if __name__ == "__main__":
    sys.exit(main())
