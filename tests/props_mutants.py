"""Planted bugs the property tests must catch (DESIGN §2: "a property that cannot fail is a
defect"): each one is applied to a scratch copy of the repository, and tests/test_properties.py
runs there against the mutated engine. Not part of `make test` (several minutes).

    .venv/bin/python -m tests.props_mutants                 # every planted bug
    .venv/bin/python -m tests.props_mutants no-dedup-window # one

Prints, per bug, the tests that failed ("caught by ..."), or NOT CAUGHT.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: name -> (file, text, replacement): each text occurs exactly once in its file.
MUTANTS: dict[str, tuple[str, str, str]] = {
    "step-bound-infinite": (
        "engine/bounds.py",
        "    return (hops + 1) * per_model",
        "    return 10**9 + 0 * (hops + 1) * per_model",
    ),
    "engine-not-counting-steps": (
        "engine/machine.py",
        "            request.steps += 1",
        "            pass",
    ),
    "cooldown-can-shorten": (
        "engine/pool.py",
        "        if old is not None and old.until >= until:\n"
        "            return old.until\n"
        "        self._cooldowns[key]",
        "        self._cooldowns[key]",
    ),
    "no-dedup-window": (
        "engine/pool.py",
        "        if here or elsewhere:",
        "        if elsewhere:",
    ),
    "shared-dedup-window-ignored": (
        "engine/pool.py",
        "        if here or elsewhere:",
        "        if here:",
    ),
    "timer-never-cancelled": (
        "engine/actions.py",
        "        r.effects.append(CancelTimer())\n    r.timer_armed = False",
        "        pass\n    r.timer_armed = False",
    ),
    "stated-reset-ignored": (
        "engine/machine.py",
        "        if failure.kind in RATE_LIMIT_KINDS:\n"
        "            cool_down_account(request, failure.reset_ms, REST_REASONS[failure.kind])",
        "        if failure.kind in RATE_LIMIT_KINDS:\n            pass",
    ),
    "switch-pause-always": (
        "engine/guards.py",
        "    return (\n        p.switch_account_delay_ms > 0\n        and last is not None",
        "    return _wait_fits(r, p.switch_account_delay_ms) or (\n"
        "        p.switch_account_delay_ms > 0\n        and last is not None",
    ),
    "5xx-rests-account": (
        "engine/actions.py",
        '    """The endpoint\'s health has counted it (`Engine._record`); this request moves on."""'
        "\n    _note_failure(r)",
        '    """The endpoint\'s health has counted it (`Engine._record`); this request moves on."""'
        '\n    _note_failure(r)\n    cool_down_account(r, 30_000, "server error")',
    ),
    "breaker-never-closes": (
        "engine/health.py",
        '        """The endpoint answered (any status that is not its own failure)."""\n'
        "        self.state = CLOSED",
        '        """The endpoint answered (any status that is not its own failure)."""',
    ),
}


def run_mutant(name: str) -> list[str]:
    """The tests of tests/test_properties.py that fail with `name` planted."""
    path, old, new = MUTANTS[name]
    with tempfile.TemporaryDirectory(prefix=f"mutant-{name}-") as tmp:
        dst = Path(tmp) / "repo"
        shutil.copytree(
            ROOT,
            dst,
            ignore=shutil.ignore_patterns(".venv", ".git", ".hypothesis", "__pycache__"),
        )
        text = (dst / path).read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{name}: the patch does not apply to {path}")
        (dst / path).write_text(text.replace(old, new))
        env = dict(os.environ, PYTHONPATH=str(dst))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rf", "tests/test_properties.py"],
            cwd=dst,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    failed = re.findall(r"^FAILED \S+::(\S+?)(?: - |$)", result.stdout, re.M)
    return sorted(set(failed))


def main(names: list[str]) -> int:
    missed = 0
    for name in names or list(MUTANTS):
        caught = run_mutant(name)
        print(f"== {name}")
        for test in caught:
            print(f"   caught by {test}")
        if not caught:
            missed += 1
            print("   NOT CAUGHT")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
