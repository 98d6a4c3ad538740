"""The aiohttp server: the Anthropic Messages API in front of the engine.

Routes: `POST /v1/messages` (stream and not), `POST /v1/messages/count_tokens` (an estimate),
`GET /v1/models`, `GET /health` (no upstream calls), `GET /accounts` (account status), `HEAD /`
and `GET /` (Claude Code's connectivity probe), and Claude Code's telemetry sinks answered
quietly. Every error is Anthropic's error JSON with the right status, never a traceback. Every
answer carries a `request-id` header (the id in the log line and the trace), and answers that
retrying cannot fix carry `x-should-retry: false`. An optional API key (`x-api-key` or
bearer) is compared in constant time. One aiohttp `ClientSession`, one engine and one runner
per app, held in typed app state and closed with the app.
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.client_stream import (
    NO_RETRY_STATUSES,
    AiohttpClientStream,
    error_response,
    no_retry_headers,
)
from adapters.cloudcode.credentials import CredentialManager
from adapters.cloudcode.transport import CloudCodeTransport, RequestContext
from adapters.config import Settings
from adapters.convert.anthropic import RequestError, estimate_input_tokens, parse_messages_request
from adapters.convert.request import unsupported_feature
from adapters.convert.signatures import SignatureCache
from adapters.store_sqlite import SQLiteStore
from adapters.trace.format import Header
from adapters.trace.recorder import FanOut, TraceFile, TraceRecorder
from engine.machine import Engine
from engine.pool import AccountPool
from engine.runner import Runner, SystemClock
from engine.runner.ports import Clock, TraceSink, Transport

log = logging.getLogger("interlock.server")

KNOWN_MODELS = (
    "claude-opus-4-6-thinking",
    "claude-sonnet-4-6",
    "claude-sonnet-4-6-thinking",
    "gemini-3-flash",
    "gemini-3.1-pro-low",
    "gemini-3.1-pro-high",
    "gemini-3.5-flash-low",
)
QUIET_SINKS = ("/api/event_logging/batch", "/")


@dataclass
class Proxy:
    """Everything one running proxy owns."""

    settings: Settings
    store: SQLiteStore
    engine: Engine
    runner: Runner
    clock: Clock
    ids: Callable[[], str]


PROXY = web.AppKey("proxy", Proxy)
REQUEST_ID = web.RequestKey("request_id", str)


def _error(status: int, error_type: str, message: str) -> web.Response:
    return error_response(status, error_type, message, **no_retry_headers(status))


@web.middleware
async def _request_id(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every answer names its request (`request-id`, as in the log and the trace); an error
    that retrying cannot fix says so (`x-should-retry: false`). Streams set both themselves."""
    request_id = request.app[PROXY].ids()
    request[REQUEST_ID] = request_id
    response = await handler(request)
    if not response.prepared:
        response.headers.setdefault("request-id", request_id)
        if response.status in NO_RETRY_STATUSES:
            response.headers.setdefault("x-should-retry", "false")
    return response


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure becomes Anthropic's error JSON; nothing escapes as a traceback."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as err:
        return _error(413, "request_too_large", f"request body too large ({err.text})")
    except web.HTTPNotFound:
        return _error(404, "not_found_error", f"Endpoint {request.method} {request.path} not found")
    except web.HTTPMethodNotAllowed:
        return _error(
            405, "invalid_request_error", f"{request.method} not allowed on {request.path}"
        )
    except web.HTTPException:
        raise
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _error(500, "api_error", "internal error in interlock (see its log)")


def _api_key_guard(settings: Settings) -> Any:
    expected = (
        settings.server.api_key.get_secret_value().encode() if settings.server.api_key else None
    )

    @web.middleware
    async def guard(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if expected is not None and request.path.startswith("/v1/"):
            given = request.headers.get("x-api-key", "")
            auth = request.headers.get("Authorization", "")
            if not given and auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not hmac.compare_digest(given.encode(), expected):
                return _error(401, "authentication_error", "invalid or missing API key")
        return await handler(request)

    return guard


def _resolve_model(proxy: Proxy, name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    mapped = proxy.settings.models.aliases.get(name, name)
    known = set(KNOWN_MODELS) | set(proxy.settings.models.aliases.values())
    return mapped if mapped in known else None


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError as err:
        raise RequestError(f"the request body is not valid JSON ({err})") from None


async def messages(request: web.Request) -> web.StreamResponse:
    proxy = request.app[PROXY]
    try:
        # the raw dict is not kept
        parsed = parse_messages_request(await _read_json(request), max_tokens_required=True)
    except RequestError as err:
        return _error(400, "invalid_request_error", str(err))
    model = _resolve_model(proxy, parsed.model)
    if model is None:
        return _error(
            404,
            "not_found_error",
            f"model: unknown model {parsed.model!r} (GET /v1/models lists them)",
        )
    unsupported = unsupported_feature(parsed, model)
    if unsupported is not None:
        return _error(400, "invalid_request_error", unsupported)
    stream = bool(parsed.stream)
    request_id = request[REQUEST_ID]
    client = AiohttpClientStream(
        request,
        stream=stream,
        ping_after_s=proxy.settings.server.ping_interval_s,
        headers={"request-id": request_id},
        retry_limit_s=proxy.settings.server.client_retry_limit_s,
    )
    context = RequestContext(request=parsed, client_model=parsed.model, stream=stream)
    outcome = await proxy.runner.run(request_id, model, stream, client, context)
    log.info(
        "%s %s %s -> %s %s",
        request_id,
        model,
        "stream" if stream else "unary",
        outcome.status,
        outcome.error_type or "ok",
    )
    if client.response is None:  # the client left: answer nothing more
        return web.Response(status=499)
    return client.response


async def count_tokens(request: web.Request) -> web.Response:
    try:
        parsed = parse_messages_request({"max_tokens": 1, **(await _read_json(request))})
    except (RequestError, TypeError) as err:
        return _error(400, "invalid_request_error", str(err))
    return web.json_response({"input_tokens": estimate_input_tokens(parsed)})


async def models(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    names = list(dict.fromkeys([*KNOWN_MODELS, *proxy.settings.models.aliases]))
    data = [
        {"type": "model", "id": name, "display_name": name, "created_at": "2026-01-01T00:00:00Z"}
        for name in names
    ]
    return web.json_response(
        {"data": data, "has_more": False, "first_id": names[0], "last_id": names[-1]}
    )


def _account_rows(proxy: Proxy) -> list[dict[str, Any]]:
    pool, now = proxy.engine.pool, proxy.clock.now()
    rows = []
    for info in proxy.store.accounts():
        cooldowns = {}
        if info.id in pool.account_ids:
            state = pool.account(info.id)
            for model in KNOWN_MODELS:
                rest = pool.cooldown(info.id, model, now)
                if rest:
                    cooldowns[model] = {
                        "seconds_left": round(rest.until - now),
                        "reason": rest.reason,
                    }
            rows.append(
                {
                    "id": info.id,
                    "email": info.email,
                    "enabled": state.enabled,
                    "invalid_reason": state.invalid_reason,
                    "verify_url": state.verify_url,
                    "consecutive_failures": state.consecutive_failures,
                    "in_flight": state.leases,
                    "cooldowns": cooldowns,
                }
            )
    return rows


async def health(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    rows = _account_rows(proxy)
    usable = [r for r in rows if r["enabled"] and not r["invalid_reason"]]
    return web.json_response(
        {
            "status": "ok" if usable else "degraded",
            "accounts": {"total": len(rows), "usable": len(usable)},
            "retry_budget": round(proxy.engine.pool.budget_tokens, 2),
        }
    )


async def accounts(request: web.Request) -> web.Response:
    return web.json_response({"accounts": _account_rows(request.app[PROXY])})


async def quiet(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"status": "ok"})


async def root(request: web.Request) -> web.Response:
    """`HEAD /` and `GET /`: Claude Code's connectivity probe (no upstream call)."""
    return web.json_response({"status": "ok", "service": "interlock"})


class _StepObserver:
    def __init__(self, on_step: Callable[[Any, str, str, str], None]) -> None:
        self.on_step = on_step


def _start_recording(
    settings: Settings, pool: AccountPool, seed: int, now: float
) -> tuple[TraceFile, TraceRecorder]:
    """`serve --record DIR`: one size-bounded trace file per run, starting from the pool as it
    is when the proxy starts (accounts by opaque id; no secrets)."""
    assert settings.server.record
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(settings.server.record) / f"interlock-{stamp}-{os.getpid()}.jsonl"
    trace_file = TraceFile(path, int(settings.server.record_max_mb * 1024 * 1024))
    header = Header(
        policy=settings.policy.model_dump(mode="json"),
        seed=seed,
        start=now,
        wall_start=time.time(),
        accounts=[pool.record(account) for account in pool.account_ids],
        note="recorded by interlock serve",
    )
    log.info("recording traces to %s", path)
    return trace_file, TraceRecorder(trace_file.write, header)


def make_app(
    settings: Settings,
    store: SQLiteStore,
    *,
    transport: Callable[[aiohttp.ClientSession], Transport] | None = None,
    clock: Clock | None = None,
    sink: TraceSink | None = None,
    on_step: Callable[[Any, str, str, str], None] | None = None,
    seed: int | None = None,
) -> web.Application:
    """The proxy as an aiohttp application (the ClientSession lives and dies with it)."""
    app = web.Application(
        middlewares=[_request_id, _errors, _api_key_guard(settings)],
        client_max_size=int(settings.server.body_limit_mb * 1024 * 1024),
    )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        the_clock = clock or SystemClock()
        pool = AccountPool(settings.policy, store=store, now=the_clock.now())
        the_seed = seed if seed is not None else random.randrange(2**31)
        engine = Engine(settings.policy, pool, rng=random.Random(the_seed))
        trace_file = recorder = None
        if settings.server.record:
            trace_file, recorder = _start_recording(settings, pool, the_seed, the_clock.now())
        observers = FanOut(recorder, sink, _StepObserver(on_step) if on_step else None)
        engine.on_step = observers.on_step if observers.targets else None
        counter = itertools.count(1)
        prefix = f"req-{int(time.time()):x}"
        # no pool limit: aiohttp's default (100) would queue stream 101 inside the session,
        # silently spending its first-byte timeout there
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        if transport is None:
            credentials = CredentialManager(session, store, settings)
            upstream: Transport = CloudCodeTransport(
                session, credentials, settings, SignatureCache()
            )
        else:
            upstream = transport(session)
        app[PROXY] = Proxy(
            settings,
            store,
            engine,
            Runner(engine, upstream, the_clock, observers if observers.targets else None),
            the_clock,
            lambda: f"{prefix}-{next(counter)}",
        )
        yield
        await session.close()
        if trace_file is not None:
            trace_file.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/accounts", accounts)
    app.router.add_get("/", root)  # aiohttp answers HEAD / from the GET route
    for path in QUIET_SINKS:
        app.router.add_post(path, quiet)
    return app
