"""A capture server that speaks the Anthropic Messages API, and the command that records what
Claude Code sends through it as fixtures (tests/fixtures/claude_code/*.json).

The server records each request (method, path with query, only the anthropic-beta,
anthropic-version, user-agent and x-app headers: never x-api-key or authorization, and the body)
and answers from a small script chosen per request:

- "text": a plain text answer;
- "tool": a Bash `tool_use` (`echo hi`), then text once the request carries its tool_result;
- "thinking": a thinking block with an 88-character signature, then text;
- "thinking-tool": thinking + a Bash tool_use, then (after the tool_result) thinking + text.

Small-model side requests (a haiku model) always get plain text; a request asking for structured
output (`output_config.format` json_schema, e.g. the session title) gets a JSON object.

    python -m tests.e2e_clients.capture --help
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.e2e_clients.clients import (
    CLAUDE_CODE_VERSION,
    ROOT,
    Tmux,
    claude_bin,
    claude_env,
    ensure_installed,
    run_claude,
    seed_home,
)

KEPT_HEADERS = ("anthropic-beta", "anthropic-version", "user-agent", "x-app")
MODES = ("text", "tool", "thinking", "thinking-tool")
FIXTURES = ROOT / "tests" / "fixtures" / "claude_code"
TOOL_COMMAND = "echo hi"


def signature(seed: str) -> str:
    """A deterministic 88-character base64 signature (real ones are long opaque base64)."""
    first = hashlib.sha256(seed.encode()).digest()
    return base64.b64encode(first + hashlib.sha256(first).digest()).decode()


def has_tool_result(body: dict[str, Any]) -> bool:
    """Whether the last message is a user turn carrying a tool_result block."""
    messages = [m for m in body.get("messages", []) if m.get("role") in ("user", "assistant")]
    if not messages or messages[-1].get("role") != "user":
        return False
    content = messages[-1].get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def answer_blocks(
    mode: str, body: dict[str, Any], turn: int, command: str = TOOL_COMMAND
) -> list[dict[str, Any]]:
    """The content blocks of the answer to one /v1/messages request."""
    model = str(body.get("model", ""))
    form = (body.get("output_config") or {}).get("format") or {}
    if form.get("type") == "json_schema":  # structured output (the session title)
        required = form.get("schema", {}).get("required", [])
        return [{"type": "text", "text": json.dumps(dict.fromkeys(required, "Say hi"))}]
    if "haiku" in model or mode == "text":
        return [{"type": "text", "text": "hello from the capture server"}]
    thought: list[dict[str, Any]] = []
    if mode.startswith("thinking"):
        idea = f"Let me think about turn {turn}."
        thought = [{"type": "thinking", "thinking": idea, "signature": signature(idea)}]
    if mode in ("tool", "thinking-tool") and not has_tool_result(body):
        call = {
            "type": "tool_use",
            "id": f"toolu_capture_{turn:03d}",
            "name": "Bash",
            "input": {"command": command, "description": "Run a command"},
        }
        return [*thought, call]
    return [*thought, {"type": "text", "text": f"done (turn {turn})"}]


def message(body: dict[str, Any], blocks: list[dict[str, Any]], turn: int) -> dict[str, Any]:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {
        "id": f"msg_capture_{turn:03d}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "unknown"),
        "content": blocks,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 8},
    }


def stream_events(msg: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The SSE events of a whole message, as the Anthropic API streams them."""
    start = {**msg, "content": [], "stop_reason": None, "usage": {**msg["usage"]}}
    start["usage"]["output_tokens"] = 1
    yield {"type": "message_start", "message": start}
    for index, block in enumerate(msg["content"]):
        kind = block["type"]
        if kind == "text":
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            delta = {"type": "text_delta", "text": block["text"]}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        elif kind == "thinking":
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            yield {"type": "content_block_start", "index": index, "content_block": empty}
            delta = {"type": "thinking_delta", "thinking": block["thinking"]}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
            delta = {"type": "signature_delta", "signature": block["signature"]}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        else:
            opened = {**block, "input": {}}
            yield {"type": "content_block_start", "index": index, "content_block": opened}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": msg["usage"]["output_tokens"]},
    }
    yield {"type": "message_stop"}


@dataclass
class CaptureServer:
    """The capture server, on 127.0.0.1 in a background thread. `mode` picks the answers; it
    may be changed between runs. `records` holds every request in arrival order."""

    mode: str = "text"
    command: str = TOOL_COMMAND
    records: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _turns: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() in KEPT_HEADERS}
        self.records.append(
            {"method": request.method, "path": request.path_qs, "headers": headers, "body": body}
        )
        if request.method == "HEAD" or request.path in ("/", ""):
            return web.Response(status=200)
        if request.path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": 42})
        if request.path != "/v1/messages" or request.method != "POST":
            return web.json_response({})
        if not isinstance(body, dict):
            error = {"type": "invalid_request_error", "message": "body is not JSON"}
            return web.json_response({"type": "error", "error": error}, status=400)
        turn = next(self._turns)
        msg = message(body, answer_blocks(self.mode, body, turn, self.command), turn)
        if not body.get("stream"):
            return web.json_response(msg)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        for event in stream_events(msg):
            frame = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
            await response.write(frame.encode())
        await response.write_eof()
        return response

    def start(self, port: int = 0) -> str:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application(client_max_size=64 * 2**20)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", port).start()
            self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
            ready.set()

        def thread() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()
            if self._runner is not None:
                self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=thread, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the capture server did not start")
        return self.url

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def take(self) -> list[dict[str, Any]]:
        out, self.records = self.records, []
        return out


@contextmanager
def capture_server(mode: str = "text") -> Iterator[CaptureServer]:
    server = CaptureServer(mode=mode)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# scenarios ------------------------------------------------------------------------------------


@dataclass
class Step:
    """One client run: claude ARGS (print mode), or a prompt typed into interactive claude."""

    args: list[str]
    interactive: bool = False


@dataclass
class Scenario:
    name: str
    mode: str
    steps: list[Step]
    about: str
    nonessential: bool = False


def _p(prompt: str, *extra: str) -> Step:
    return Step(["-p", prompt, *extra])


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "default",
            "text",
            [_p("say hi")],
            "claude -p 'say hi' (no --model: Claude Code's default model)",
        ),
        Scenario(
            "gemini",
            "text",
            [_p("say hi", "--model", "gemini-3-flash")],
            "claude -p 'say hi' --model gemini-3-flash",
        ),
        Scenario(
            "haiku",
            "text",
            [_p("say hi", "--model", "haiku")],
            "claude -p 'say hi' --model haiku (the haiku alias, as Claude Code resolves it)",
        ),
        Scenario(
            "tool",
            "tool",
            [_p("run echo hi with the Bash tool", "--allowedTools", "Bash")],
            "claude -p 'run echo hi with the Bash tool' --allowedTools Bash in an empty "
            "directory; the server answers a Bash tool_use (echo hi), then text once the "
            "tool_result arrives",
        ),
        Scenario(
            "thinking",
            "thinking",
            [_p("what is 2+2?"), _p("and 3+3?", "--continue")],
            "claude -p 'what is 2+2?', then claude --continue -p 'and 3+3?'; every answer is "
            "a signed thinking block then text, so the second request carries the first "
            "turn's thinking block with its signature",
        ),
        Scenario(
            "thinking-tool",
            "thinking-tool",
            [_p("run echo hi with the Bash tool", "--allowedTools", "Bash")],
            "claude -p 'run echo hi with the Bash tool' --allowedTools Bash; the server answers "
            "thinking + a Bash tool_use, then thinking + text after the tool_result, so the "
            "second request carries a signed thinking block before its tool_use",
        ),
        Scenario(
            "interactive",
            "text",
            [Step(["say hi"], interactive=True), Step(["and now say bye"], interactive=True)],
            "interactive claude under tmux (first-run dialogs pre-answered in a throwaway HOME, "
            "nonessential traffic left on: other hosts fail offline): two prompts typed with "
            "send-keys; every request it sent to the API, including its connectivity probe and "
            "the session-title side request",
            nonessential=True,
        ),
    )
}


def run_interactive(
    scenario: Scenario, server: CaptureServer, home: Path, cwd: Path, timeout: float
) -> list[str]:
    """Type each step's prompt into interactive claude; returns the screens seen (for logs)."""
    screens: list[str] = []
    tmux = Tmux(home / "tmux.sock")
    env = claude_env(home, server.url, nonessential=scenario.nonessential)
    tmux.start([str(claude_bin())], cwd=cwd, env=env)
    try:
        tmux.wait_for("for shortcuts", timeout) or tmux.wait_for(">", 2)
        screens.append(tmux.screen())
        for step in scenario.steps:
            before = _messages(server.records)
            tmux.type_line(step.args[0])
            end = time.monotonic() + timeout
            while time.monotonic() < end and _messages(server.records) <= before:
                time.sleep(0.2)
            time.sleep(3.0)  # side requests (titles, topics) follow the main one
            screens.append(tmux.screen())
    finally:
        tmux.stop()
    return screens


def _messages(records: list[dict[str, Any]]) -> int:
    return sum(1 for r in records if r["path"].startswith("/v1/messages"))


def capture(scenario: Scenario, timeout: float, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run one scenario against a fresh capture server; every request it recorded."""
    with (
        capture_server(scenario.mode) as server,
        tempfile.TemporaryDirectory(prefix="cc-capture-") as tmp,
    ):
        home, cwd = Path(tmp) / "home", Path(tmp) / "work"
        cwd.mkdir(parents=True)
        seed_home(home, cwd)
        if scenario.steps[0].interactive:
            for screen in run_interactive(scenario, server, home, cwd, timeout):
                log(screen.rstrip())
        else:
            for step in scenario.steps:
                ran = run_claude(
                    step.args,
                    base_url=server.url,
                    home=home,
                    cwd=cwd,
                    timeout=timeout,
                    nonessential=scenario.nonessential,
                )
                log(
                    f"$ claude {' '.join(step.args)}  -> exit {ran.returncode} "
                    f"in {ran.seconds:.1f}s"
                )
                log(ran.stdout.strip()[-400:])
                if ran.returncode != 0:
                    log(ran.stderr.strip()[-800:])
        return server.take()


def fixture_name(scenario: str, index: int, record: dict[str, Any]) -> str:
    body = record["body"] if isinstance(record["body"], dict) else {}
    model = str(body.get("model", ""))
    side = "-haiku" if "haiku" in model and "haiku" not in scenario else ""
    if record["path"].startswith("/v1/messages") and record["method"] == "POST":
        kind = "count-tokens" if "count_tokens" in record["path"] else "messages"
    else:
        kind = record["method"].lower() + "-" + (record["path"].strip("/").split("?")[0] or "root")
    return f"{scenario}-{index:02d}-{kind.replace('/', '-')}{side}.json"


def write_fixtures(scenario: Scenario, records: list[dict[str, Any]], out: Path) -> list[Path]:
    written = []
    for old in out.glob(f"{scenario.name}-[0-9][0-9]-*.json"):
        old.unlink()
    for index, record in enumerate(records, 1):
        fixture = {
            "about": f"Claude Code {CLAUDE_CODE_VERSION}, request {index} of {len(records)} "
            f"(scenario {scenario.name}): {scenario.about}. Captured with "
            "`python -m tests.e2e_clients.capture` (capture server on 127.0.0.1, throwaway "
            "HOME, ANTHROPIC_API_KEY=sk-test-dummy, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1).",
            "client": f"claude-code {CLAUDE_CODE_VERSION}",
            "scenario": scenario.name,
            "index": index,
            **record,
        }
        path = out / fixture_name(scenario.name, index, record)
        path.write_text(json.dumps(fixture, indent=1, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.e2e_clients.capture",
        description="Run the pinned Claude Code against a local capture server and write each "
        "request it sends as a fixture (tests/fixtures/claude_code/SCENARIO-NN-KIND.json). "
        "Installs Claude Code into .cache/e2e-clients/ with npm when missing.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"which to run (default: all): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--out", type=Path, default=FIXTURES, help="fixture directory")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per client run")
    parser.add_argument(
        "--serve",
        metavar="PORT",
        type=int,
        help="only run the capture server on this port (0: any) and print what arrives",
    )
    parser.add_argument("--mode", choices=MODES, default="text", help="answers for --serve")
    parser.add_argument(
        "--command", default=TOOL_COMMAND, help="the Bash command tool_use answers ask for"
    )
    args = parser.parse_args(argv)
    if args.serve is not None:
        return serve_forever(args.serve, args.mode, args.command)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    ensure_installed()
    if any(SCENARIOS[s].steps[0].interactive for s in args.scenarios or SCENARIOS) and (
        shutil.which("tmux") is None
    ):
        parser.error("the interactive scenario needs tmux")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios or list(SCENARIOS):
        scenario = SCENARIOS[name]
        print(f"== {name}: {scenario.about}", flush=True)
        records = capture(scenario, args.timeout, lambda s: print("   " + s, flush=True))
        for path in write_fixtures(scenario, records, args.out):
            print(f"   wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


def serve_forever(port: int, mode: str, command: str = TOOL_COMMAND) -> int:
    server = CaptureServer(mode=mode, command=command)
    url = server.start(port)
    print(f"capture server on {url} (mode {mode}); Ctrl-C stops it", flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            for record in server.records[seen:]:
                body = record["body"] if isinstance(record["body"], dict) else {}
                print(record["method"], record["path"], body.get("model", ""), flush=True)
            seen = len(server.records)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
