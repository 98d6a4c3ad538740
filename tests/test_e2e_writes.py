"""How few writes an answer takes to reach the client: a short streamed answer leaves in two
(the status line and headers with the first events; the last events with the end of the
stream), a non-streamed one in one. Counted on the proxy's side of the client connection."""

from __future__ import annotations

from asyncio import selector_events
from typing import Any

import aiohttp
import pytest

from tests.e2e import BODY, proxy, run


def count_writes(monkeypatch: pytest.MonkeyPatch, port: list[int], writes: list[int]) -> None:
    transport = selector_events._SelectorSocketTransport
    original_write, original_writelines = transport.write, transport.writelines

    def counted(self: Any) -> None:
        try:
            if self._sock.getsockname()[1] == port[0]:
                writes[0] += 1
        except OSError:
            pass

    def write(self: Any, data: Any) -> None:
        counted(self)
        original_write(self, data)

    def writelines(self: Any, data: Any) -> None:
        counted(self)
        original_writelines(self, data)

    monkeypatch.setattr(transport, "write", write)
    monkeypatch.setattr(transport, "writelines", writelines)


@pytest.mark.parametrize(("stream", "expected"), [(True, 2), (False, 1)])
def test_a_short_answer_reaches_the_client_in_as_few_writes_as_it_can(
    monkeypatch: pytest.MonkeyPatch, stream: bool, expected: int
) -> None:
    port, writes = [0], [0]
    count_writes(monkeypatch, port, writes)

    async def scenario() -> None:
        async with proxy(1) as served, aiohttp.ClientSession() as session:
            port[0] = int(served.url.rsplit(":", 1)[1])
            for _ in range(2):  # warm: the model list, the token
                async with session.post(served.url + "/v1/messages", json=BODY) as response:
                    await response.read()
            writes[0] = 0
            for _ in range(5):
                async with session.post(
                    served.url + "/v1/messages", json={**BODY, "stream": stream}
                ) as response:
                    text = await response.text()
                    assert response.status == 200
                    if stream:
                        assert text.rstrip().endswith('data: {"type":"message_stop"}')
            assert writes[0] == 5 * expected

    run(scenario())
