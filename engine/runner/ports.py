"""The ports the runner drives: clock, upstream transport, client stream, trace sink, and the
shared 429 dedup window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from engine.effects import Effect, Outcome, SendAttempt
from engine.events import Event


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (must equal the running event loop's `time()`)."""
        ...

    def wall(self) -> float:
        """Wall-clock seconds since the epoch (for absolute upstream reset timestamps)."""
        ...


class Transport(Protocol):
    def attempt(self, send: SendAttempt, payload: Any) -> AsyncIterator[Event]:
        """Perform one upstream attempt, yielding what happened in order: `StreamOpened`,
        `ContentReceived`..., then exactly one final event (`StreamEnded`, `StreamBroken`,
        `UpstreamFailed` or `UpstreamUnreachable`). Cancellation aborts the attempt."""
        ...


class ClientStream(Protocol):
    async def commit(self) -> None:
        """The first content is coming: send the response headers."""
        ...

    async def send(self, content: Any) -> None: ...

    async def finish(self, outcome: Outcome) -> None:
        """The request is over: end the stream, or answer the error."""
        ...

    async def wait_disconnected(self) -> None:
        """Return when the client goes away (never, if it stays)."""
        ...

    def disconnected(self) -> bool:
        """Whether the client is already seen gone, checked at once (`wait_disconnected` may
        learn it only at its next poll). The runner asks before it hands the engine an
        attempt's event or a timer, so that nothing is sent upstream for a client that left
        between two polls. A stream told of a disconnect at once may always answer False."""
        ...


class DedupWindow(Protocol):
    async def claim(self, account: str, model: str, holder: str, ttl_ms: int) -> bool | None:
        """Claim account x model's 429 dedup window, shared by every instance, for `holder`
        (a request id) for `ttl_ms`, unless another holder has it. True: `holder` has it (now
        or already); False: another request has it, so this 429 is a duplicate; None: nothing
        is shared now (e.g. the store is unreachable), the instance's own window decides.
        Must return promptly: a 429 waits for it."""
        ...


class TraceSink(Protocol):
    def arrived(
        self,
        request_id: str,
        at: float,
        model: str,
        stream: bool,
        client_model: str | None = None,
    ) -> None:
        """A request arrived for upstream `model`; `client_model` is the name the client sent
        (None when unknown, e.g. on replay of an old trace)."""
        ...

    def received(self, request_id: str, at: float, event: Event) -> None: ...
    def emitted(self, request_id: str, at: float, state: str, effects: list[Effect]) -> None: ...
