"""`interlock serve` and `interlock diagram` as a user runs them: what goes wrong at startup is
one line on stderr and exit status 2, never a traceback; one state database, one `serve`."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.store_sqlite import Credentials, SQLiteStore, StateInUse, StateLock

TIMEOUT = 60


def interlock(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("INTERLOCK_STATE", None)
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=TIMEOUT,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr and len(err.splitlines()) == 1, result.stderr
    assert err.startswith("interlock: "), err
    for needle in needles:
        assert needle in err, err
    return err


@contextmanager
def serving(state: Path) -> Iterator[subprocess.Popen[str]]:
    """`interlock serve --state STATE --port 0` in the background, until it says it listens."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "serve", "--state", str(state), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            line = process.stdout.readline()
            if not line or "listening on" in line:
                break
        assert process.poll() is None, process.communicate(timeout=TIMEOUT)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)


def test_serve_refuses_a_state_path_that_is_a_directory_and_leaves_its_mode_alone(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "state-dir"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    result = interlock("serve", "--state", str(directory), "--port", "0")
    one_line_error(result, str(directory), "is a directory")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755


def test_accounts_refuse_a_state_path_that_is_a_directory_and_leave_its_mode_alone(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "state-dir"
    directory.mkdir()
    directory.chmod(0o750)
    result = interlock("accounts", "--state", str(directory), "import", str(tmp_path / "x.json"))
    one_line_error(result, "is a directory")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = interlock("serve", "--state", str(tmp_path / "s.db"), "--port", str(port))
    one_line_error(result, f"127.0.0.1:{port}", "in use")


def test_serve_on_an_unresolvable_host_says_so_in_one_line(tmp_path: Path) -> None:
    result = interlock(
        "serve", "--state", str(tmp_path / "s.db"), "--port", "0", "--host", "no-such-host.invalid"
    )
    one_line_error(result, "no-such-host.invalid")


def test_diagram_to_a_place_it_cannot_write_says_so_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = interlock("diagram", "--out", str(blocker / "diagrams"), "--readme", "none")
    one_line_error(result, str(blocker / "diagrams"))


def test_a_second_serve_on_the_same_state_database_exits_2_and_the_first_keeps_serving(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.db"
    with serving(state) as first:
        second = interlock("serve", "--state", str(state), "--port", "0")
        one_line_error(second, str(state), "already", str(first.pid))
        assert first.poll() is None
        # `interlock accounts` is meant to run next to serve: it never takes the lock
        added = subprocess.run(
            [
                sys.executable,
                "-m",
                "adapters.cli",
                "accounts",
                "--state",
                str(state),
                "add",
                "--email",
                "a@example.com",
                "--refresh-token",
                "tok",
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert added.returncode == 0, added.stderr
    with serving(state):  # the lock went with the first process
        pass


def test_the_state_lock_is_released_when_serve_stops_in_process(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateLock(path):
        with pytest.raises(StateInUse, match="already"):
            StateLock(path).acquire()
        SQLiteStore(path).add_account("a@example.com", Credentials(refresh_token="t"))
    with StateLock(path):
        pass
