"""`interlock serve` runs on uvloop when it is installed (`[server] event_loop = "auto"`, the
default), on asyncio's loop when told, and refuses `uvloop` in one line when it is missing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from adapters.serve import ServeError, choose_event_loop


def serve_sandbox(tmp_path: Path, event_loop: str) -> tuple[str, str]:
    """Start `interlock serve --sandbox` with that event loop, send one request, stop it;
    returns (the first line it printed, the answer's text)."""
    config = tmp_path / "interlock.toml"
    config.write_text(f'[server]\nevent_loop = "{event_loop}"\n')
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--sandbox",
            "--port",
            "0",
            "--config",
            str(config),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.split(" listening on ")[1].split()[0]
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
        }
        request = urllib.request.Request(
            url + "/v1/messages",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return first, answer.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_runs_on_uvloop_when_it_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    first, answer = serve_sandbox(tmp_path, "auto")
    assert first.rstrip().endswith("(uvloop)")
    assert json.loads(answer)["type"] == "message"


def test_serve_runs_on_asyncios_loop_when_told(tmp_path: Path) -> None:
    first, answer = serve_sandbox(tmp_path, "asyncio")
    assert first.rstrip().endswith("(asyncio)")
    assert json.loads(answer)["type"] == "message"


def test_uvloop_asked_for_and_missing_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # importing it now raises ImportError
    with pytest.raises(ServeError, match="uvloop is not installed"):
        choose_event_loop("uvloop")
    assert choose_event_loop("auto") == "asyncio"
    assert choose_event_loop("asyncio") == "asyncio"
    assert isinstance(asyncio.get_event_loop_policy(), asyncio.DefaultEventLoopPolicy)
