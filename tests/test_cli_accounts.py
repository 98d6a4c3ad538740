"""`interlock accounts` as a user runs it: clear one-line errors, exit 2, no secrets shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SECRET = "1//0gSECRET-cli-refresh"


def run(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INTERLOCK_STATE": str(tmp_path / "state.db")}
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "accounts", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_accounts_can_be_added_listed_disabled_enabled_and_removed(tmp_path: Path) -> None:
    added = run(
        tmp_path, "add", "--email", "a@example.com", "--refresh-token", "-", stdin=SECRET + "\n"
    )
    assert added.returncode == 0 and "a@example.com" in added.stdout
    assert run(tmp_path, "disable", "a@example.com").returncode == 0
    listing = run(tmp_path, "list", "--json")
    assert json.loads(listing.stdout)[0]["enabled"] is False
    assert run(tmp_path, "enable", "a@example.com").returncode == 0
    assert run(tmp_path, "remove", "a@example.com").returncode == 0
    assert "no accounts" in run(tmp_path, "list").stdout
    for result in (added, listing):
        assert SECRET not in result.stdout + result.stderr


def test_errors_are_one_line_with_exit_status_2_and_no_traceback(tmp_path: Path) -> None:
    cases = [
        run(tmp_path, "remove", "nobody@example.com"),
        run(tmp_path, "import", str(tmp_path / "missing.json")),
        run(tmp_path, "add", "--email", "a@example.com", "--refresh-token", "-", stdin="\n"),
    ]
    for result in cases:
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.stderr.startswith("interlock: ")


def test_listing_before_anything_was_added_says_so(tmp_path: Path) -> None:
    result = run(tmp_path, "list")
    assert result.returncode == 0 and "no accounts yet" in result.stdout
