"""`make demo`: interlock in sandbox mode, driven by the official `anthropic` SDK.

Starts the proxy on the built-in fake upstream with three simulated accounts, sends four
requests (a normal answer; a quota-exhausted account that fails over at once; a target out of
capacity that rests while another serves; a stream cut after it committed), and prints, for
each, what the client saw and the request's path through the states with times and upstream
attempts. The capacity tier is shortened to 1 s; everything else is the default policy.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import anthropic

from adapters import serve
from adapters.config import load_settings
from adapters.fake_upstream import drop_after, preset, stream, text
from adapters.serve import Served
from adapters.timeline import Timeline

MODEL = "claude-sonnet-4-6"
DEMO_POLICY = {
    "capacity_backoff_tiers_ms": [1000],
    "strategy": "sticky",
}


async def _ask(client: anthropic.AsyncAnthropic, prompt: str) -> str:
    pieces: list[str] = []
    try:
        async with client.messages.stream(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}]
        ) as s:
            async for piece in s.text_stream:
                pieces.append(piece)
            final = await s.get_final_message()
        return f"{''.join(pieces)!r} (stop_reason {final.stop_reason})"
    except anthropic.APIError as err:
        body = getattr(err, "body", None)
        detail = body.get("error", {}) if isinstance(body, dict) else {}
        what = f"{detail.get('type', 'error')}: {detail.get('message', err.message)}"
        if pieces:
            return f"{''.join(pieces)!r}, then one error event ({what})"
        return f"HTTP {getattr(err, 'status_code', '?')} {what}"


async def main() -> int:
    timeline = Timeline()
    settings = load_settings(env={}, overrides={"server": {"port": 0}, "policy": DEMO_POLICY})
    served: Served = await serve.start(
        settings, sandbox_accounts=3, seed=0, sink=timeline, on_step=timeline.on_step
    )
    assert served.fake is not None
    fake = served.fake
    timeline.names.update({a.id: a.email.split("@")[0] for a in served.store.accounts()})
    client = anthropic.AsyncAnthropic(base_url=served.url, api_key="demo", max_retries=0)
    print(f"interlock (sandbox) on {served.url}: 3 simulated accounts, fake upstream\n")
    scenes: list[tuple[str, Callable[[], None], str]] = [
        ("1. a normal answer", lambda: None, "Say hello."),
        (
            "2. account-1's quota is exhausted: interlock rests it and fails over at once",
            lambda: fake.script("account-1", [preset("quota_429")]),
            "And again?",
        ),
        (
            "3. no capacity on account-2's first endpoint: that target rests, the next serves",
            lambda: fake.script("account-2", [preset("capacity_429")]),
            "Still there?",
        ),
        (
            "4. the stream breaks after content reached the client: one error, never re-sent",
            lambda: fake.script(
                "account-2", [drop_after(2, stream(text("Partial answer, then"), chunks=4))]
            ),
            "Tell me a story.",
        ),
    ]
    try:
        for title, prepare, prompt in scenes:
            prepare()
            before = set(timeline.lines)
            seen = await asyncio.wait_for(_ask(client, prompt), 60)
            print(f"{title}\n  client saw: {seen}")
            for request_id in sorted(set(timeline.lines) - before):
                print(timeline.render(request_id))
            print()
    finally:
        await served.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
