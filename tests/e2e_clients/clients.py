"""The pinned real clients: where they are installed, how they are run (offline, bounded)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("E2E_CLIENTS_CACHE", ROOT / ".cache" / "e2e-clients"))
CLAUDE_CODE_VERSION = "2.1.332"
TS_SDK_VERSION = "1.14.0"
PACKAGES = (
    f"@anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}",
    f"@anthropic-ai/sdk@{TS_SDK_VERSION}",
)
DUMMY_KEY = "sk-test-dummy"
INSTALL_TIMEOUT = 300.0


def claude_bin() -> Path:
    return CACHE / "node_modules" / ".bin" / "claude"


def installed_version(package: str) -> str | None:
    manifest = CACHE / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_installed() -> None:
    """npm-install the pinned clients into CACHE unless they are there already."""
    if (
        installed_version("@anthropic-ai/claude-code") == CLAUDE_CODE_VERSION
        and installed_version("@anthropic-ai/sdk") == TS_SDK_VERSION
        and claude_bin().exists()
    ):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install the clients under test")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), *PACKAGES],
        check=True,
        timeout=INSTALL_TIMEOUT,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.e2e_clients.clients install`: install the pinned clients (once)."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["install"]:
        print("usage: python -m tests.e2e_clients.clients install", file=sys.stderr)
        return 2
    ensure_installed()
    print(f"Claude Code {CLAUDE_CODE_VERSION} and @anthropic-ai/sdk {TS_SDK_VERSION} in {CACHE}")
    return 0


def claude_env(
    home: Path, base_url: str, api_key: str = DUMMY_KEY, *, nonessential: bool = False
) -> dict[str, str]:
    """The environment Claude Code runs in: a throwaway HOME, the proxy as its API, no
    telemetry, no auto-update, nothing inherited that names another Anthropic account.
    `nonessential=True` leaves Claude Code's nonessential traffic on (its side requests)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "CLAUDE_", "INTERLOCK_"))
    }
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_API_KEY=api_key,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        NO_COLOR="1",
    )
    if nonessential:
        del env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"]
    return env


def seed_home(home: Path, workdir: Path, api_key: str = DUMMY_KEY) -> None:
    """Pre-answer Claude Code's first-run dialogs (theme, API key approval, folder trust), so
    that interactive mode starts straight at the prompt."""
    home.mkdir(parents=True, exist_ok=True)
    state = {
        "hasCompletedOnboarding": True,
        "lastOnboardingVersion": CLAUDE_CODE_VERSION,
        "theme": "dark",
        "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
        "projects": {
            str(workdir): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}
        },
    }
    (home / ".claude.json").write_text(json.dumps(state))


@dataclass
class Ran:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_claude(
    args: list[str],
    *,
    base_url: str,
    home: Path,
    cwd: Path,
    api_key: str = DUMMY_KEY,
    timeout: float = 60.0,
    nonessential: bool = False,
) -> Ran:
    """`claude ARGS` (print mode, normally), bounded by `timeout` (killed after it)."""
    start = time.monotonic()
    try:
        done = subprocess.run(
            [str(claude_bin()), *args],
            check=False,
            cwd=cwd,
            env=claude_env(home, base_url, api_key, nonessential=nonessential),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code = -9
        out = _text(exc.stdout)
        err = _text(exc.stderr) + f"\n(killed after {timeout} s)"
    return Ran([str(claude_bin()), *args], code, out, err, time.monotonic() - start)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


class Tmux:
    """Interactive `claude` in a private tmux server (its own socket), driven by send-keys and
    read by capture-pane; every wait is bounded."""

    def __init__(self, socket: Path, name: str = "cc") -> None:
        self.socket = socket
        self.name = name

    def _tmux(self, *args: str, timeout: float = 10.0) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return done.stdout

    def start(self, command: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        assignments = [f"{k}={v}" for k, v in env.items()]
        self._tmux(
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            "160",
            "-y",
            "50",
            "-c",
            str(cwd),
            "env",
            "-i",
            *assignments,
            *command,
        )

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def type_line(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        time.sleep(0.3)
        self.keys("Enter")

    def wait_for(self, needle: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.screen():
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self._tmux("kill-server")


if __name__ == "__main__":
    sys.exit(main())
