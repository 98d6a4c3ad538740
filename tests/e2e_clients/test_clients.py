"""`make e2e-clients`: real Claude Code (2.1.332) and the real TypeScript SDK (1.14.0) against
`interlock serve --sandbox`, each test on its own proxy process with its own fake upstream.

Not part of `make test` (marker `e2e_clients`). Needs node and npm; the clients are installed
into .cache/e2e-clients/ on first use. Every client run and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.fake.presets import google_error
from tests.e2e_clients.clients import CACHE, ROOT, ensure_installed, run_claude, seed_home

pytestmark = pytest.mark.e2e_clients

API_KEY = "sk-interlock-e2e"
FAKE_TEXT = "Hello from the fake upstream."
TS_SDK = Path(__file__).with_name("ts_sdk.cjs")
START_TIMEOUT = 20.0
CLAUDE_TIMEOUT = 90.0
SDK_TIMEOUT = 60.0
RATE_LIMIT_BUDGET = 20.0
HOUR_QUOTA_429 = {
    "kind": "error",
    "status": 429,
    "body": google_error(
        429,
        "You have exhausted your capacity on this model.",
        reason="QUOTA_EXHAUSTED",
        metadata={"model": "claude-sonnet-4-6", "quotaResetDelay": "3600s"},
        retry_delay="3600s",
    ),
}


@dataclass
class Sandbox:
    """A running `interlock serve --sandbox` and its fake upstream's admin site."""

    url: str
    admin: str
    log: Path

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.admin + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def script(self, *answers: Any, account: str | None = None) -> None:
        self._admin("POST", "/_fake/script", {"account": account, "answers": list(answers)})

    def default(self, answer: Any) -> None:
        self._admin("POST", "/_fake/default", {"answer": answer})

    def generated(self) -> list[dict[str, Any]]:
        """The generate requests the fake upstream received, oldest first."""
        found = []
        for call in ("streamGenerateContent", "generateContent"):
            found += self._admin("GET", f"/_fake/log?call={call}")["requests"]
        return sorted(found, key=lambda r: r["seq"])

    def post(self, body: dict[str, Any], timeout: float = 60.0) -> tuple[int, dict[str, str]]:
        """A raw POST /v1/messages with the right key; (status, headers)."""
        request = urllib.request.Request(
            self.url + "/v1/messages",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json", "x-api-key": API_KEY},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as err:
            err.read()
            return err.code, dict(err.headers)


@pytest.fixture(scope="session")
def installed() -> Path:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is needed for the real-client tests")
    ensure_installed()
    return CACHE


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """`interlock serve --sandbox --port 0` with an API key; stopped after the test."""
    log = tmp_path / "interlock.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env.update(INTERLOCK_API_KEY=API_KEY, HOME=str(tmp_path / "home"))
    command = [sys.executable, "-m", "adapters.cli", "serve", "--sandbox", "--port", "0"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url = admin = ""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and not admin:
            assert process.poll() is None, f"interlock exited: {log.read_text()}"
            for line in log.read_text(errors="replace").splitlines():
                if "interlock listening on " in line:
                    url = line.split("listening on ", 1)[1].split()[0]
                if "POST " in line and line.rstrip().endswith("/_fake/script"):
                    admin = line.split("POST ", 1)[1].strip().removesuffix("/_fake/script")
            time.sleep(0.1)
        assert url and admin, f"interlock did not start in {START_TIMEOUT} s: {log.read_text()}"
        yield Sandbox(url, admin, log)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# Claude Code -------------------------------------------------------------------------------------


def claude(sandbox: Sandbox, tmp_path: Path, *args: str) -> tuple[str, Path]:
    home, work = tmp_path / "cc-home", tmp_path / "work"
    work.mkdir(exist_ok=True)
    seed_home(home, work, API_KEY)
    ran = run_claude(
        list(args),
        base_url=sandbox.url,
        home=home,
        cwd=work,
        api_key=API_KEY,
        timeout=CLAUDE_TIMEOUT,
    )
    detail = f"claude {' '.join(args)}: exit {ran.returncode} after {ran.seconds:.1f} s\n"
    detail += f"stdout: {ran.stdout[-1500:]}\nstderr: {ran.stderr[-1500:]}"
    assert ran.returncode == 0, detail
    return ran.stdout, work


def family(model: str) -> str:
    return next((n for n in ("opus", "sonnet", "haiku", "gemini") if n in model), model)


def test_claude_code_with_its_default_model(
    installed: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    out, _ = claude(sandbox, tmp_path, "-p", "say hi")
    assert FAKE_TEXT in out
    models = [r["model"] for r in sandbox.generated()]
    assert models and all(family(m) == "opus" for m in models), models


def test_claude_code_with_a_gemini_model(installed: Path, sandbox: Sandbox, tmp_path: Path) -> None:
    out, _ = claude(sandbox, tmp_path, "-p", "say hi", "--model", "gemini-3-flash")
    assert FAKE_TEXT in out
    assert [r["model"] for r in sandbox.generated()] == ["gemini-3-flash"]


def test_claude_code_runs_a_tool_and_reads_its_result(
    installed: Path, sandbox: Sandbox, tmp_path: Path
) -> None:
    command = {"command": "echo e2e-tool-ran > proof.txt", "description": "Write proof.txt"}
    sandbox.script(
        {"kind": "stream", "parts": [{"function_call": "Bash", "args": command}]},
        {"kind": "stream", "parts": ["The tool ran."]},
    )
    out, work = claude(
        sandbox, tmp_path, "-p", "write proof.txt with the Bash tool", "--allowedTools", "Bash"
    )
    assert (work / "proof.txt").read_text().strip() == "e2e-tool-ran", "the tool did not run"
    assert "The tool ran." in out
    requests = sandbox.generated()
    assert len(requests) == 2, [r["outcome"] for r in requests]
    parts = [p for c in requests[1]["body"]["request"]["contents"] for p in c.get("parts", [])]
    assert any(p.get("functionResponse", {}).get("name") == "Bash" for p in parts), parts


# the TypeScript SDK ------------------------------------------------------------------------------


def ts_sdk(
    sandbox: Sandbox, scenario: str, api_key: str = API_KEY, timeout: float = SDK_TIMEOUT
) -> dict[str, Any]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")},
        "ANTHROPIC_BASE_URL": sandbox.url,
        "ANTHROPIC_API_KEY": api_key,
        "NODE_PATH": str(CACHE / "node_modules"),
    }
    try:
        done = subprocess.run(
            ["node", str(TS_SDK), scenario],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the TypeScript SDK ({scenario}) did not return within {timeout} s")
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output from the SDK script: {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def test_ts_sdk_messages_create(installed: Path, sandbox: Sandbox) -> None:
    result = ts_sdk(sandbox, "create")
    assert result["ok"], result
    assert result["text"] == FAKE_TEXT and result["stop_reason"] == "end_turn", result
    assert result["model"] == "claude-sonnet-4-6" and result["id"].startswith("msg_"), result


def test_ts_sdk_messages_stream(installed: Path, sandbox: Sandbox) -> None:
    result = ts_sdk(sandbox, "stream")
    assert result["ok"], result
    assert result["text"] == FAKE_TEXT == result["final_text"], result
    events = result["events"]
    assert events[0] == "message_start" and events[-1] == "message_stop", events
    assert "content_block_delta" in events and result["stop_reason"] == "end_turn"


def test_ts_sdk_not_found_error_for_an_unknown_model(installed: Path, sandbox: Sandbox) -> None:
    result = ts_sdk(sandbox, "not-found")
    assert not result["ok"] and result["error"] == "NotFoundError", result
    assert "NotFoundError" in result["instance_of"] and result["status"] == 404, result


def test_ts_sdk_authentication_error_for_a_wrong_key(installed: Path, sandbox: Sandbox) -> None:
    result = ts_sdk(sandbox, "auth", api_key="sk-wrong-key")
    assert not result["ok"] and result["error"] == "AuthenticationError", result
    assert "AuthenticationError" in result["instance_of"] and result["status"] == 401, result


def test_ts_sdk_rate_limit_error_when_every_account_is_exhausted(
    installed: Path, sandbox: Sandbox
) -> None:
    """Every sandbox account answers a quota 429 that resets in an hour: interlock answers 429
    at once, and the SDK with its default maxRetries (2) must give up quickly, not sleep out the
    hour-long retry-after."""
    sandbox.default(HOUR_QUOTA_429)
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    }
    status, _ = sandbox.post(body)  # exhausts every account (switching pauses: ~15 s)
    assert status == 429
    accounts = {r["account"] for r in sandbox.generated()}
    assert len(accounts) == 3, accounts
    start = time.monotonic()
    result = ts_sdk(sandbox, "rate-limit", timeout=RATE_LIMIT_BUDGET + 5)
    seconds = time.monotonic() - start
    assert not result["ok"] and result["error"] == "RateLimitError", result
    assert "RateLimitError" in result["instance_of"] and result["status"] == 429, result
    assert seconds < RATE_LIMIT_BUDGET, f"the SDK took {seconds:.1f} s: {result}"
