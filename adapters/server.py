"""The aiohttp server: the Anthropic Messages API in front of the engine.

Routes: `POST /v1/messages` (stream and not), `POST /v1/messages/count_tokens` (an estimate),
`GET /v1/models[/{id}]`, `GET /health` (no upstream calls), `GET /accounts` (account status),
`GET /quota` (the last quota readings, `adapters.quota`), `GET /metrics`, the dashboard under
`/dashboard` (`adapters.dashboard`), `HEAD`/`GET` of `/` and `/api/hello` (connectivity probes),
and Claude Code's telemetry sinks answered quietly. Every error is Anthropic's error JSON with
the right status, never a traceback, quoting little of the client's text. Every answer carries a
`request-id` header (the id in the log line and the trace), and answers that retrying cannot fix
carry `x-should-retry: false`. Before any handler, `adapters.web_guard` checks `Host`, cross-
site signals, the API key and the content type; bodies are decoded within `adapters.json_body`'s
limits; aiohttp's own log of malformed requests is one line each (`adapters.http_log`). One
aiohttp `ClientSession`, one engine and one runner per app, held in typed app state and closed
with the app; so is the task that writes the pool's changes to the state database behind the
requests and applies changes made there by `interlock accounts` within `state_poll_s`
(`adapters.store_sync`), and, with `[state] redis_url`, the link that shares the pool with other
instances (`adapters.shared`).

Model names resolve through the model catalog (`adapters.models`: the upstream's live list,
family rules, aliases); only a name that resolves to nothing is a 404.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from adapters.client_stream import (
    NO_RETRY_STATUSES,
    AiohttpClientStream,
    error_response,
    no_retry_headers,
)
from adapters.cloudcode.credentials import CredentialManager
from adapters.cloudcode.models import ModelListFetcher
from adapters.cloudcode.tier import TierReader
from adapters.cloudcode.transport import CloudCodeTransport, RequestContext
from adapters.config import Settings
from adapters.convert.anthropic import (
    QUOTE_CHARS,
    MessagesRequest,
    RequestError,
    ThinkingAdaptive,
    ThinkingEnabled,
    bounded,
    estimate_input_tokens,
    parse_messages_request,
    quote,
)
from adapters.convert.signatures import SignatureCache
from adapters.dashboard.auth import DashboardAuth
from adapters.dashboard.live import LiveView
from adapters.dashboard.routes import AUTH_KEY, DASHBOARD_KEY, Dashboard
from adapters.dashboard.routes import add_routes as add_dashboard_routes
from adapters.http_log import http_log
from adapters.json_body import decode_object
from adapters.metrics import Metrics
from adapters.models import ModelCatalog, Resolution
from adapters.models.catalog import Fetch
from adapters.quota import QuotaMonitor, Reading, ReadTier
from adapters.quota_view import quota_json
from adapters.request_log import FIELDS, RequestLog, describe
from adapters.shared.merge import account_key
from adapters.shared.redis_share import RedisShare, SharedStore
from adapters.status import endpoint_rows
from adapters.store_sqlite import QuotaRow, SQLiteStore
from adapters.store_sync import StoreSync
from adapters.trace.format import Header
from adapters.trace.recorder import FanOut, TraceFile, TraceRecorder
from adapters.web_guard import PROBES, web_guard
from engine.machine import Engine
from engine.pool import AccountPool
from engine.runner import Runner, SystemClock
from engine.runner.ports import Clock, TraceSink, Transport
from engine.store import StateStore

log = logging.getLogger("interlock.server")

#: `created_at` of every model object: the upstream reports no dates.
MODEL_CREATED_AT = "2026-01-01T00:00:00Z"
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
    models: ModelCatalog
    sync: StoreSync
    quota: QuotaMonitor | None = None  # None: quota is not read (no upstream to read it from)
    worker: tuple[int, int] | None = None  # (index, count) under `serve --workers`
    share: RedisShare | None = None  # the link to the other instances (`[state] redis_url`)
    told: set[str] = field(default_factory=set)  # things the log has said once


PROXY = web.AppKey("proxy", Proxy)
REQUEST_LOG = web.AppKey("request_log", RequestLog)
METRICS = web.AppKey("metrics", Metrics)
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
        return _error(
            404,
            "not_found_error",
            f"Endpoint {request.method} {bounded(request.path, QUOTE_CHARS)} not found",
        )
    except web.HTTPMethodNotAllowed:
        return _error(
            405,
            "invalid_request_error",
            f"{request.method} not allowed on {bounded(request.path, QUOTE_CHARS)}",
        )
    except web.HTTPException:
        raise
    except ConnectionError as err:  # the client hung up, say mid-upload: nobody to answer
        log.info(
            "%s %s: the client hung up (%s: %s)",
            request.method,
            bounded(request.path, QUOTE_CHARS),
            type(err).__name__,
            err,
        )
        return web.Response(status=499)
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        return _error(500, "api_error", "internal error in interlock (see its log)")


async def _resolve_model(proxy: Proxy, name: str, *, thinking: bool = False) -> Resolution | None:
    """The upstream model for a client's model name (waits briefly for the first live list)."""
    await proxy.models.current()
    return proxy.models.resolve(name, thinking=thinking)


def _unknown_model(proxy: Proxy, name: str) -> web.Response:
    names = ", ".join(_listed(proxy))
    return _error(
        404,
        "not_found_error",
        f"model: unknown model {quote(name)}; available: {names} (GET /v1/models lists them)",
    )


def _wants_thinking(parsed: MessagesRequest) -> bool:
    """Thinking `enabled` or `adaptive` picks a thinking variant where one exists."""
    return isinstance(parsed.thinking, ThinkingEnabled | ThinkingAdaptive)


def _note_safeguards(proxy: Proxy, parsed: MessagesRequest) -> None:
    """Say once per kind that a requested safeguard does not exist upstream."""
    for safeguard in parsed.safeguards:
        kind = str(safeguard.get("type", "unknown"))
        if f"safeguard:{kind}" not in proxy.told:
            proxy.told.add(f"safeguard:{kind}")
            log.warning(
                "a client asked for the %r safeguard; the upstream has no such classifier, "
                "so its tool calls are not screened (said once)",
                kind,
            )


async def _read_json(request: web.Request) -> dict[str, Any]:
    return decode_object(await request.read())


async def messages(request: web.Request) -> web.StreamResponse:
    proxy = request.app[PROXY]
    try:
        # the raw dict is not kept
        parsed = parse_messages_request(await _read_json(request), max_tokens_required=True)
    except RequestError as err:
        return _error(400, "invalid_request_error", str(err))
    thinking = _wants_thinking(parsed)
    resolved = await _resolve_model(proxy, parsed.model, thinking=thinking)
    if resolved is None:
        return _unknown_model(proxy, parsed.model)
    # `adaptive` leaves thinking to the model: one that cannot think just answers
    if parsed.thinking_requested and not resolved.thinking_available:
        return _error(
            400,
            "invalid_request_error",
            f"thinking: model {quote(parsed.model)} (upstream {resolved.model!r}) does not "
            "support thinking; send the request without `thinking`, or use a thinking model",
        )
    model = resolved.model
    _note_safeguards(proxy, parsed)
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
    try:
        outcome = await proxy.runner.run(
            request_id, model, stream, client, context, client_model=parsed.model
        )
    finally:
        request.app[METRICS].forget(request_id)  # a run that raised never finished
        if DASHBOARD_KEY in request.app:
            request.app[DASHBOARD_KEY].live.forget(request_id)
    fields = request.app[REQUEST_LOG].finish(request_id, outcome)
    log.info(
        "%s %s -> %s (%s) %s -> %s %s %s",
        request_id,
        parsed.model,
        fields.get("served_model", model),
        resolved.via,
        "stream" if stream else "unary",
        outcome.status,
        outcome.error_type or "ok",
        describe(fields),
        extra={FIELDS: {**fields, "via": resolved.via}},
    )
    if client.response is None:  # the client left: answer nothing more
        return web.Response(status=499)
    return client.response


async def count_tokens(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    try:
        parsed = parse_messages_request({"max_tokens": 1, **(await _read_json(request))})
    except RequestError as err:
        return _error(400, "invalid_request_error", str(err))
    if await _resolve_model(proxy, parsed.model) is None:
        return _unknown_model(proxy, parsed.model)
    return web.json_response({"input_tokens": estimate_input_tokens(parsed)})


def _listed(proxy: Proxy) -> list[str]:
    """The ids `GET /v1/models` lists: the upstream's models, then the configured aliases."""
    return list(dict.fromkeys([*proxy.models.names(), *proxy.settings.models.aliases]))


def _model_object(proxy: Proxy, name: str, upstream: str) -> dict[str, Any]:
    info = proxy.models.models().get(upstream)
    display = info.display_name if info else upstream
    return {"type": "model", "id": name, "display_name": display, "created_at": MODEL_CREATED_AT}


async def models(request: web.Request) -> web.Response:
    """Anthropic's model list (`limit` 1-1000, default 20; `after_id` / `before_id` page)."""
    proxy = request.app[PROXY]
    await proxy.models.current()
    names = _listed(proxy)
    query = request.query
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        return _error(400, "invalid_request_error", "limit: must be an integer from 1 to 1000")
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        return _error(400, "invalid_request_error", "give after_id or before_id, not both")
    for key, value in (("after_id", after), ("before_id", before)):
        if value is not None and value not in names:
            return _error(400, "invalid_request_error", f"{key}: unknown model {quote(value)}")
    if before is not None:
        end = names.index(before)
        page, has_more = names[max(0, end - limit) : end], end - limit > 0
    else:
        start = names.index(after) + 1 if after is not None else 0
        page, has_more = names[start : start + limit], start + limit < len(names)
    data = []
    for name in page:
        resolved = proxy.models.resolve(name)
        data.append(_model_object(proxy, name, resolved.model if resolved else name))
    return web.json_response(
        {
            "data": data,
            "has_more": has_more,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
    )


async def model(request: web.Request) -> web.Response:
    """One model object for any name that resolves, under the id the client asked for (the
    name `/v1/messages` echoes too); the display name is the serving upstream model's."""
    proxy = request.app[PROXY]
    name = request.match_info["model_id"]
    resolved = await _resolve_model(proxy, name)
    if resolved is None:
        return _unknown_model(proxy, name)
    return web.json_response(_model_object(proxy, name, resolved.model))


def _account_rows(proxy: Proxy) -> list[dict[str, Any]]:
    pool, now = proxy.engine.pool, proxy.clock.now()
    rows = []
    for info in proxy.store.accounts():
        cooldowns = {}
        if info.id in pool.account_ids:
            state = pool.account(info.id)
            for model in proxy.models.names():
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
                    "in_flight": state.leases,
                    "cooldowns": cooldowns,
                }
            )
    return rows


async def health(request: web.Request) -> web.Response:
    proxy = request.app[PROXY]
    rows = _account_rows(proxy)
    usable = [r for r in rows if r["enabled"] and not r["invalid_reason"]]
    share = proxy.share
    shared = None
    if share is not None:
        shared = {
            "redis": "connected" if share.connected.is_set() else "unreachable",
            "applied": share.applied,  # changes other instances made, applied here
            "pending": share.pending,  # changes made here, not yet in Redis
        }
    fine = usable and proxy.sync.failing is None and (share is None or share.connected.is_set())
    return web.json_response(
        {
            "status": "ok" if fine else "degraded",
            "accounts": {"total": len(rows), "usable": len(usable)},
            "endpoints": endpoint_rows(proxy.engine.pool, proxy.clock.now()),
            "state_writes": {"pending": proxy.sync.pending, "failing": proxy.sync.failing},
            "workers": proxy.worker[1] if proxy.worker else 1,
            "worker": proxy.worker[0] if proxy.worker else 0,
            "shared": shared,
        }
    )


async def accounts(request: web.Request) -> web.Response:
    return web.json_response({"accounts": _account_rows(request.app[PROXY])})


async def quota(request: web.Request) -> web.Response:
    """Each account's last quota reading per model, its tier and its rests (no upstream call)."""
    proxy = request.app[PROXY]
    return web.json_response(
        quota_json(
            proxy.store.accounts(),
            proxy.quota.readings if proxy.quota else {},
            proxy.engine.pool,
            now=proxy.clock.now(),
            wall=proxy.clock.wall(),
            reading=proxy.quota is not None,
        )
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format (needs the API key when one is configured, as every route)."""
    return web.Response(
        body=request.app[METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def quiet(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"status": "ok"})


async def root(request: web.Request) -> web.Response:
    """`HEAD`/`GET` of `/` and `/api/hello`: connectivity probes (no upstream call)."""
    return web.json_response({"status": "ok", "service": "interlock"})


class _StepObserver:
    def __init__(self, on_step: Callable[[Any, str, str, str], None]) -> None:
        self.on_step = on_step


def _keep_reading(
    catalog: ModelCatalog,
    sync: StoreSync,
    share: RedisShare | None,
    account: str,
    reading: Reading,
) -> None:
    """A quota reading also refreshes the model catalog, goes to the state database and, with
    Redis, to the other instances."""
    catalog.offer(account, reading.models)
    if share is not None and reading.read_at is not None:
        for model, info in reading.models.items():
            if info.remaining_fraction is not None:
                share.reading(account, model, info.remaining_fraction, reading.read_at)
    rows = {
        model: QuotaRow(info.remaining_fraction, info.reset_time, reading.read_at or 0.0)
        for model, info in reading.models.items()
    }
    tier = (reading.tier.name, reading.tier.id) if reading.tier else None
    sync.save_quota(account, rows, tier)


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
    model_fetch: Callable[[aiohttp.ClientSession], Fetch] | None = None,
    worker: tuple[int, int] | None = None,
) -> web.Application:
    """The proxy as an aiohttp application (the ClientSession lives and dies with it). The
    model catalog fetches the live list with `model_fetch`, by default through the Cloud Code
    API when `transport` is the default too; else it serves the built-in list."""
    key = settings.server.api_key
    auth = DashboardAuth(key.get_secret_value() if key else None)
    dashboard = settings.server.dashboard
    app = web.Application(
        middlewares=[_request_id, _errors, web_guard(settings, auth if dashboard else None)],
        client_max_size=int(settings.server.body_limit_mb * 1024 * 1024),
        handler_args={"logger": http_log()},
    )

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        the_clock = clock or SystemClock()
        sync = StoreSync(store.path, now=the_clock.now)
        share = None
        pool_store: StateStore = sync
        if settings.state.redis_url is not None:
            share = RedisShare(
                settings.state.redis_url.get_secret_value(),
                lambda: {info.id: account_key(info.email) for info in store.accounts()},
                clock=the_clock,
            )
            pool_store = SharedStore(sync, share, the_clock.wall)
        pool = AccountPool(settings.policy, store=pool_store, now=the_clock.now())
        sync.start(pool, settings.server.state_poll_s)
        if share is not None:
            share.start(pool)
        the_seed = seed if seed is not None else random.randrange(2**31)
        engine = Engine(settings.policy, pool, rng=random.Random(the_seed))
        trace_file = recorder = None
        if settings.server.record:
            trace_file, recorder = _start_recording(settings, pool, the_seed, the_clock.now())
        # no pool limit: aiohttp's default (100) would queue stream 101 inside the session,
        # silently spending its first-byte timeout there
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        fetch = model_fetch(session) if model_fetch is not None else None
        read_tier: ReadTier | None = None
        if transport is None:
            credentials = CredentialManager(session, store, settings)
            upstream: Transport = CloudCodeTransport(
                session, credentials, settings, SignatureCache()
            )
            fetch = fetch or ModelListFetcher(session, credentials, settings)
            read_tier = TierReader(credentials)
        else:
            upstream = transport(session)
        monitor = None
        if fetch is not None and settings.quota.enabled:
            monitor = QuotaMonitor(
                settings.quota,
                pool,
                fetch,
                read_tier,
                clock=the_clock,
                max_reset_s=settings.upstream.max_reset_s,
                rng=random.Random(the_seed),
                on_read=lambda account, reading: _keep_reading(
                    catalog, sync, share, account, reading
                ),
            )
        catalog = ModelCatalog(
            settings.models,
            monitor.models if monitor is not None else fetch,  # one read serves both
            lambda: [a for a in pool.account_ids if pool.account(a).valid],
            monotonic=the_clock.now,
        )
        catalog.start()  # in the background: startup never waits for the upstream
        if monitor is not None:
            monitor.start()
        app[REQUEST_LOG] = RequestLog()
        live = LiveView(now=the_clock.now, wall=the_clock.wall) if dashboard else None
        observers = FanOut(
            recorder,
            sink,
            app[REQUEST_LOG],
            _StepObserver(on_step) if on_step else None,
            app[METRICS],
            monitor,
            live,
        )
        if live is not None:
            app[DASHBOARD_KEY] = Dashboard(
                pool,
                store.accounts,
                monitor,
                live,
                the_clock,
                auth,
                lambda: {"pending": sync.pending, "failing": sync.failing},
            )
        engine.on_step = observers.on_step if observers.targets else None
        counter = itertools.count(1)
        prefix = f"req-{int(time.time()):x}"
        app[METRICS].watch_pool(pool, the_clock.now)
        app[PROXY] = Proxy(
            settings,
            store,
            engine,
            Runner(engine, upstream, the_clock, observers if observers.targets else None, share),
            the_clock,
            lambda: f"{prefix}-{next(counter)}",
            catalog,
            sync,
            monitor,
            worker,
            share,
        )
        yield
        if share is not None:
            await share.close()
        if monitor is not None:
            await monitor.close()
        await catalog.close()
        await session.close()
        await sync.close()  # after the last request: what it changed is written
        if trace_file is not None:
            trace_file.close()

    app[METRICS] = Metrics()
    app.cleanup_ctx.append(lifecycle)
    if dashboard:
        app[AUTH_KEY] = auth
        add_dashboard_routes(app)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model_id}", model)
    app.router.add_get("/health", health)
    app.router.add_get("/accounts", accounts)
    app.router.add_get("/quota", quota)
    app.router.add_get("/metrics", metrics)
    for path in PROBES:  # aiohttp answers HEAD from the GET route
        app.router.add_get(path, root)
    for path in QUIET_SINKS:
        app.router.add_post(path, quiet)
    return app
