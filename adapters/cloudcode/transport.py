"""The Cloud Code transport: the engine's `Transport` port over aiohttp.

One attempt = one POST to `<endpoint>/v1internal:streamGenerateContent?alt=sse` with the headers
and envelope of reference/seed-behaviour.md §4.2-§4.3. What happens is reported as engine
events, in order: `StreamOpened`, `ContentReceived(Anthropic events)`..., then exactly one of
`StreamEnded`, `StreamBroken`, `UpstreamFailed(facts)`, `UpstreamUnreachable`. Timeouts per
attempt: connect, first byte (until the status line), idle (between chunks). Cancellation (the
client left, the deadline passed) aborts the HTTP request. An `{"error": ...}` object or the
"no longer supported" text inside a 200 stream is a failure, not content.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from adapters.cloudcode import session as conversations
from adapters.cloudcode.credentials import (
    AccountRevoked,
    CredentialManager,
    CredentialsUnavailable,
    OAuthClientRejected,
)
from adapters.cloudcode.errors import clamp_resets
from adapters.cloudcode.facts import (
    facts_from_response,
    facts_from_stream_error,
    is_version_gate_text,
)
from adapters.config import Settings, UpstreamSettings
from adapters.convert.anthropic import MessagesRequest
from adapters.convert.request import to_cloudcode
from adapters.convert.response import StreamTranslator
from adapters.convert.signatures import SignatureCache
from adapters.sse import JsonChunk, JsonResult, JsonStreamDecoder, SSEError
from engine.actions import format_duration
from engine.effects import SendAttempt
from engine.events import (
    ContentReceived,
    Event,
    StreamBroken,
    StreamEnded,
    StreamOpened,
    UpstreamFailed,
    UpstreamUnreachable,
)
from engine.failures import FailureKind, UpstreamFacts

log = logging.getLogger("interlock.transport")

STREAM_PATH = "/v1internal:streamGenerateContent?alt=sse"
MAX_ERROR_BODY = 64 * 1024
IDENTITY = (
    "You are Antigravity, a powerful agentic AI coding assistant designed by the Google "
    "Deepmind team working on Advanced Agentic Coding."
)


@dataclass
class RequestContext:
    """What the runner hands the transport for every attempt of one client request."""

    request: MessagesRequest
    client_model: str
    stream: bool


def _platform() -> str:
    system = {"Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "linux")
    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    return f"{system}/{arch}"


def antigravity_headers(up: UpstreamSettings) -> dict[str, str]:
    """The headers every Cloud Code call carries (seed §4.2), without the token."""
    return {
        "User-Agent": f"antigravity/{up.user_agent_version} {_platform()}",
        "X-Client-Name": "antigravity",
        "X-Client-Version": up.client_version,
        "x-goog-api-client": "gl-node/18.18.2 fire/0.8.6 grpc/1.10.x",
    }


def is_claude_thinking(model: str) -> bool:
    lower = model.lower()
    return "claude" in lower and "thinking" in lower


class CloudCodeTransport:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: CredentialManager,
        settings: Settings,
        signatures: SignatureCache,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._credentials = credentials
        self._settings = settings
        self._signatures = signatures
        self._wall = wall
        self._session_ids: dict[str, str] = {}
        self._base_headers = antigravity_headers(settings.upstream)

    def session_id(self, account: str) -> str:
        """One machine session id per account per process (seed §2.8): the
        `X-Machine-Session-Id` header. The body's `sessionId` is per conversation instead
        (`conversation_session_id`)."""
        if account not in self._session_ids:
            self._session_ids[account] = f"{uuid.uuid4()}{int(self._wall() * 1000)}"
        return self._session_ids[account]

    def conversation_session_id(
        self, account: str, request: MessagesRequest, upstream_model: str
    ) -> str:
        """The body's `sessionId`: one per conversation and account (`.session`), so
        that conversations sharing an account keep their own implicit prompt cache."""
        key = conversations.conversation_key(request, upstream_model)
        return conversations.session_id(account, key)

    def headers(self, token: str, model: str, account: str) -> dict[str, str]:
        headers = {
            **self._base_headers,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "X-Machine-Session-Id": self.session_id(account),
        }
        if is_claude_thinking(model):
            headers["anthropic-beta"] = "interleaved-thinking-2025-05-14"
        return headers

    async def attempt(self, send: SendAttempt, payload: Any) -> AsyncIterator[Event]:
        context: RequestContext = payload
        try:
            token = await self._credentials.access_token(
                send.account, refresh=send.refresh_credentials
            )
            project = await self._credentials.project(send.account, token)
        except AccountRevoked as err:
            facts = UpstreamFacts(kind=FailureKind.AUTH_REVOKED, status=401, message=str(err))
            yield UpstreamFailed(facts=facts, wall=self._wall())
            return
        except OAuthClientRejected as err:  # the proxy's configuration, no account's fault
            facts = UpstreamFacts(
                kind=FailureKind.CONFIGURATION, status=err.status, message=str(err)
            )
            yield UpstreamFailed(facts=facts, wall=self._wall())
            return
        except CredentialsUnavailable as err:  # the token endpoint, not the upstream
            yield UpstreamUnreachable(reason=str(err), credentials=True)
            return
        request_id = f"agent-{uuid.uuid4()}"
        body, names = to_cloudcode(
            context.request,
            upstream_model=send.model,
            project=project,
            session_id=self.conversation_session_id(send.account, context.request, send.model),
            request_id=request_id,
            signatures=self._signatures,
            system_instruction=IDENTITY,
            now=time.monotonic(),
        )
        url = self._settings.upstream.endpoints[send.endpoint] + STREAM_PATH
        up = self._settings.upstream
        timeout = aiohttp.ClientTimeout(
            total=None, connect=up.connect_timeout_s, sock_read=up.idle_timeout_s
        )
        try:
            async with asyncio.timeout(up.first_byte_timeout_s):
                response = await self._session.post(
                    url,
                    data=json.dumps(body).encode(),
                    headers=self.headers(token, send.model, send.account),
                    timeout=timeout,
                )
        except (aiohttp.ClientError, TimeoutError) as err:
            yield UpstreamUnreachable(reason=f"{send.endpoint}: {_describe(err)}")
            return
        async with response:
            if response.status == 200 and not _is_event_stream(response):
                facts = await _not_a_stream(response, send.endpoint)
                yield UpstreamFailed(facts=facts, wall=self._wall())
                return
            if response.status != 200:
                if response.status == 401:
                    self._credentials.forget(send.account)
                text = (await response.content.read(MAX_ERROR_BODY)).decode("utf-8", "replace")
                facts = facts_from_response(
                    response.status, dict(response.headers), text, now_wall=self._wall()
                )
                yield UpstreamFailed(facts=self._bounded(facts, send.account), wall=self._wall())
                return
            yield StreamOpened()
            deadline = asyncio.get_running_loop().time() + up.max_stream_s
            async for event in self._relay(response, context, names, send, deadline):
                yield event

    async def _relay(
        self,
        response: aiohttp.ClientResponse,
        context: RequestContext,
        names: Any,
        send: SendAttempt,
        deadline: float,
    ) -> AsyncIterator[Event]:
        model = send.model
        translator = StreamTranslator(
            context.client_model,
            names,
            self._signatures,
            time.monotonic(),
            upstream_model=model,
            stop_sequences=context.request.stop_sequences,
            omit_thinking=context.request.thinking_omitted,
        )
        decoder = JsonStreamDecoder()
        held: list[dict[str, Any]] = []  # a non-streaming client commits only a complete answer
        try:
            async for results in _decoded(response, decoder, deadline):
                for event in self._translate(results, translator, send.account):
                    if not isinstance(event, ContentReceived):
                        yield event  # a failure inside the 200 stream ends the attempt
                        return
                    if context.stream:
                        yield event
                    else:
                        held.extend(event.content)
        except StreamTooLong:
            limit = self._settings.upstream.max_stream_s
            yield StreamBroken(reason=f"the answer streamed longer than max_stream_s ({limit:g} s)")
            return
        except (aiohttp.ClientError, TimeoutError, SSEError) as err:
            yield StreamBroken(reason=_describe(err))
            return
        closing = [*held, *translator.finish()]
        if closing:
            yield ContentReceived(content=closing)
        yield StreamEnded()

    def _bounded(self, facts: UpstreamFacts, account: str) -> UpstreamFacts:
        """The facts with their stated resets capped at `[upstream] max_reset_s` (logged)."""
        max_s = self._settings.upstream.max_reset_s
        bounded, longest = clamp_resets(facts, max_s * 1000.0, self._wall())
        if longest is not None:
            log.warning(
                "%s: the upstream stated a reset %s away; capped at %s ([upstream] max_reset_s)",
                account,
                format_duration(longest),
                format_duration(max_s * 1000.0),
            )
        return bounded

    def _translate(
        self, results: list[JsonResult], translator: StreamTranslator, account: str
    ) -> list[Event]:
        """One upstream read's chunks as events: all their content in one `ContentReceived`
        (adjacent text deltas of one block merged into one), or the failure they carry."""
        batch = _Batch()
        for result in results:
            if not isinstance(result, JsonChunk):
                log.debug("ignored a stream line that is not JSON: %s", result.why)
                continue
            obj = result.value
            if "error" in obj:
                facts = facts_from_stream_error(obj, now_wall=self._wall())
                facts = self._bounded(facts, account)
                return [*batch.events_out(), UpstreamFailed(facts=facts, wall=self._wall())]
            chunk = obj.get("response", obj)
            if not isinstance(chunk, dict):
                continue
            if not translator.started and _gate_text(chunk):
                facts = UpstreamFacts(
                    kind=FailureKind.VERSION_REJECTED,
                    status=200,
                    message="This version of Antigravity is no longer supported",
                )
                return [*batch.events_out(), UpstreamFailed(facts=facts, wall=self._wall())]
            batch.add(translator.feed(chunk))
        return batch.events_out()


def _text_delta(event: dict[str, Any]) -> bool:
    return event.get("type") == "content_block_delta" and event["delta"].get("type") == (
        "text_delta"
    )


class _Batch:
    """The content of one upstream read. Adjacent text deltas of one block become one delta
    (their texts joined once), so a read of many small chunks is one frame to encode and send,
    not one per chunk; every other event stays as it is, in order."""

    def __init__(self) -> None:
        self.content: list[dict[str, Any]] = []
        self._texts: list[str] | None = None  # the pieces of the last event, a text delta

    def add(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            last = self.content[-1] if self.content else None
            if (
                self._texts is not None
                and last is not None
                and _text_delta(event)
                and event["index"] == last["index"]
            ):
                self._texts.append(event["delta"]["text"])
                continue
            self._seal()
            self.content.append(event)
            self._texts = [event["delta"]["text"]] if _text_delta(event) else None

    def _seal(self) -> None:
        if self._texts is not None and len(self._texts) > 1:
            last = self.content[-1]
            self.content[-1] = {**last, "delta": {**last["delta"], "text": "".join(self._texts)}}
        self._texts = None

    def events_out(self) -> list[Event]:
        self._seal()
        return [ContentReceived(content=self.content)] if self.content else []


class StreamTooLong(Exception):
    """The answer was still streaming at its deadline (`[upstream] max_stream_s`)."""


async def _decoded(
    response: aiohttp.ClientResponse, decoder: JsonStreamDecoder, deadline: float
) -> AsyncIterator[list[JsonResult]]:
    """The stream's JSON events as they arrive, then the last one even without a newline;
    `StreamTooLong` once the loop's clock passes `deadline`. Each read is bounded on its own
    (never a timeout around a `yield`: it would cancel whatever the consumer awaits)."""
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                data = await response.content.readany()
        except TimeoutError:
            if asyncio.get_running_loop().time() >= deadline:
                raise StreamTooLong from None
            raise  # the idle timeout (sock_read) of the session
        if not data:
            break
        yield decoder.feed(data)
    yield decoder.end()


def _is_event_stream(response: aiohttp.ClientResponse) -> bool:
    """An answer without a Content-Type is given the benefit of the doubt."""
    return "Content-Type" not in response.headers or response.content_type == "text/event-stream"


async def _not_a_stream(response: aiohttp.ClientResponse, endpoint: str) -> UpstreamFacts:
    """A 200 whose body is not an event stream (an HTML login or error page from a proxy in
    the way, a JSON body): a server error of that endpoint, named for what it is."""
    body = (await response.content.read(MAX_ERROR_BODY)).decode("utf-8", "replace")
    excerpt = " ".join(body.split())[:200]
    return UpstreamFacts(
        kind=FailureKind.SERVER_ERROR,
        status=200,
        message=f"{endpoint} answered 200 with {response.content_type} instead of an event "
        f"stream: {excerpt or '(empty body)'}",
    )


def _gate_text(chunk: dict[str, Any]) -> bool:
    for candidate in chunk.get("candidates") or []:
        for part in (candidate.get("content") or {}).get("parts") or []:
            if isinstance(part, dict) and is_version_gate_text(str(part.get("text", ""))):
                return True
    return False


def _describe(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, aiohttp.ClientPayloadError):
        return "the upstream closed the connection mid-stream"
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
