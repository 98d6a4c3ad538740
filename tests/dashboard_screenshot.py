"""The README's dashboard screenshot: the sandbox proxy with three accounts (one out of quota
for a model, one disabled), a few requests finished and two in flight, photographed in
headless Chromium.

    .venv/bin/python -m tests.dashboard_screenshot [diagrams/dashboard.png]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from adapters.fake_upstream import preset, stream
from adapters.server import PROXY
from tests.browser import browser_page
from tests.e2e import MODEL, post, proxy

OUT = Path("diagrams/dashboard.png")


async def shoot(out: Path) -> None:
    slow = {"first_byte_timeout_s": 30}
    async with proxy(3, upstream=slow) as served, browser_page(1280, 1000) as page_:
        page: Any = page_
        fake = served.fake
        assert fake is not None
        fake.set_quota(MODEL, 0.0, reset_time="2026-11-26T18:00:00Z", account="account-1")
        fake.set_quota(MODEL, 0.35, account="account-2")
        fake.set_quota("gemini-3-flash", 0.05, account="account-3")
        quota = served.runner.app[PROXY].quota
        assert quota is not None
        await quota.read_all()
        fake.script("account-2", [preset("server_500")])
        for stream_it in (True, False, True):
            await post(served, stream=stream_it)
        fake.script("account-2", [stream("a long answer", latency=20)])
        fake.script("account-3", [stream("a long answer", latency=20)])
        waiting = [asyncio.ensure_future(post(served, stream=True)) for _ in range(2)]
        await page.goto(served.url + "/dashboard")
        await page.locator("#chart .state.busy").first.wait_for()
        await page.locator("#finished summary").first.click()
        out.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(out), full_page=True)
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(shoot(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
