"""A pytest plugin for tests/mutants/run.py: writes what failed, what did not collect and
where `engine` was imported from to the JSON file named by $MUTANTS_REPORT."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

_failed: list[str] = []
_collect_errors: list[str] = []


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _collect_errors.append(report.nodeid)


def pytest_runtest_logreport(report: Any) -> None:
    if report.failed and report.nodeid not in _failed:
        _failed.append(report.nodeid)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    path = os.environ.get("MUTANTS_REPORT")
    if not path:
        return
    engine = sys.modules.get("engine")
    with open(path, "w") as out:
        json.dump(
            {
                "failed": _failed,
                "collect_errors": _collect_errors,
                "engine": getattr(engine, "__file__", None),
                "exitstatus": int(exitstatus),
            },
            out,
        )
