"""The JavaScript proxy interlock replaces, run from npm against the fake upstream, for
side-by-side benchmarks (`bench/hotpath_bench.py --js`).

`antigravity-claude-proxy@2.0.4` is installed once into `.cache/js-proxy/` (npm; about a minute).
Each run copies it into a temporary directory and points it at the fake: its endpoint and token
URL constants are rewritten (it has no setting for them), and its accounts file (under a
temporary HOME) holds the fake's accounts. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "antigravity-claude-proxy"
VERSION = "2.0.4"
CACHE = Path(os.environ.get("INTERLOCK_JS_PROXY_CACHE", ROOT / ".cache" / "js-proxy"))
ORIGINALS = {
    "'https://daily-cloudcode-pa.googleapis.com'": "daily",
    "'https://cloudcode-pa.googleapis.com'": "prod",
    "'https://oauth2.googleapis.com/token'": "token",
}


def install() -> Path:
    """The installed package directory (npm-installed into CACHE the first time)."""
    package = CACHE / "node_modules" / PACKAGE
    manifest = package / "package.json"
    if manifest.exists() and json.loads(manifest.read_text())["version"] == VERSION:
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to run the JavaScript proxy")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), f"{PACKAGE}@{VERSION}"],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    return package


def prepare(workdir: Path, fake: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """A copy of the JavaScript proxy pointed at the fake: (command, environment) to start it;
    the port is given as PORT in the environment by the caller."""
    installed = install()
    app = workdir / "js-app"
    if not app.exists():
        shutil.copytree(CACHE / "node_modules", app / "node_modules", symlinks=True)
    constants = app / "node_modules" / PACKAGE / "src" / "constants.js"
    text = (installed / "src" / "constants.js").read_text()  # the original, every time
    urls = {
        "daily": fake["endpoints"]["daily"],
        "prod": fake["endpoints"]["prod"],
        "token": fake["token_url"],
    }
    for original, name in ORIGINALS.items():
        if original not in text:
            raise RuntimeError(f"{constants}: {original} not found (another version?)")
        text = text.replace(original, repr(urls[name]))
    constants.write_text(text)
    home = workdir / "js-home"
    config = home / ".config" / "antigravity-proxy"
    config.mkdir(parents=True, exist_ok=True)
    accounts = [
        {
            "email": account["email"],
            "source": "oauth",
            "enabled": True,
            "refreshToken": account["refresh_token"],
            "projectId": account["project"],
            "addedAt": "2026-01-01T00:00:00.000Z",
        }
        for account in fake["accounts"]
    ]
    (config / "accounts.json").write_text(
        json.dumps({"accounts": accounts, "settings": {}, "activeIndex": 0})
    )
    command = ["node", str(app / "node_modules" / PACKAGE / "src" / "index.js")]
    return command, {**os.environ, "HOME": str(home)}
