"""The dashboard's routes: one page, its script and style, a JSON snapshot it polls every
second, enable/disable, and the login form. Everything is served by the proxy from files in
`static/` (no CDN, no build step; works offline); the page has a strict Content-Security-Policy
(`'self'` only, no inline script).

    GET  /dashboard                      the page (the state chart is `chart.svg()`)
    GET  /dashboard/app.js, app.css, favicon.svg   its script, style and icon
    GET  /dashboard/api/state            the snapshot (no upstream call)
    POST /dashboard/api/accounts/{id}/enable | disable   (needs X-Interlock-CSRF)
    GET  /dashboard/login, POST /dashboard/login          (with an API key configured)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from adapters.dashboard.auth import DASHBOARD, LOGIN, DashboardAuth
from adapters.dashboard.chart import svg
from adapters.dashboard.live import LiveView
from adapters.quota import QuotaMonitor, Reading
from adapters.quota_view import iso
from adapters.status import account_state, endpoint_rows
from adapters.store_sqlite import AccountInfo
from engine.pool import AccountPool, UnknownAccount
from engine.runner.ports import Clock

log = logging.getLogger("interlock.dashboard")

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make a form post say `Origin: null`
    "Cache-Control": "no-store",
}


@dataclass
class Dashboard:
    """What the dashboard reads and changes."""

    pool: AccountPool
    accounts: Callable[[], list[AccountInfo]]  # the stored accounts (ids, emails)
    quota: QuotaMonitor | None
    live: LiveView
    clock: Clock
    auth: DashboardAuth
    state_writes: Callable[[], dict[str, Any]]


DASHBOARD_KEY = web.AppKey("dashboard", Dashboard)
AUTH_KEY = web.AppKey("dashboard_auth", DashboardAuth)


@cache
def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS
    )


async def page(request: web.Request) -> web.Response:
    auth = request.app[AUTH_KEY]
    body = (
        _static("index.html")
        .replace("{{CSRF}}", auth.csrf)
        .replace("{{CHART}}", svg())
        .replace("{{LOGOUT}}", "" if not auth.needs_login else '<a href="login">sign in again</a>')
    )
    return _html(body)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    types = {"app.js": "text/javascript", "app.css": "text/css", "favicon.svg": "image/svg+xml"}
    return web.Response(
        text=_static(name),
        content_type=types[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


def _account_rows(dash: Dashboard, now: float, wall: float) -> list[dict[str, Any]]:
    pool = dash.pool
    readings = dash.quota.readings if dash.quota else {}
    rows = []
    for info in dash.accounts():
        if info.id not in pool.account_ids:
            continue
        state = pool.account(info.id)
        reading = readings.get(info.id, Reading())
        rests = [
            {
                "model": model,
                "until": iso(wall + (cd.until - now)),
                "seconds_left": round(cd.until - now),
                "reason": cd.reason,
            }
            for model, cd in sorted(pool.cooldowns(info.id, now).items())
        ] + [
            {
                "model": f"{model} @ {endpoint}",
                "until": iso(wall + (rest.until - now)),
                "seconds_left": round(rest.until - now),
                "reason": rest.reason,
            }
            for (model, endpoint), rest in sorted(pool.rests(info.id, now).items())
        ]
        rows.append(
            {
                "id": info.id,
                "label": info.email,
                "state": account_state(pool, info.id, now),
                "enabled": state.enabled,
                "invalid_reason": state.invalid_reason,
                "verify_url": state.verify_url,
                "in_flight": state.leases,
                "rests": rests,
                "tier": reading.tier.name if reading.tier else None,
                "quota_read_at": iso(reading.read_at),
                "quota_error": reading.error,
                "quota": {
                    model: {"remaining_fraction": q.remaining_fraction, "reset_time": q.reset_time}
                    for model, q in reading.models.items()
                },
            }
        )
    return rows


async def state(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD_KEY]
    now, wall = dash.clock.now(), dash.clock.wall()
    accounts = _account_rows(dash, now, wall)
    return web.json_response(
        {
            "now": iso(wall),
            "accounts": accounts,
            "endpoints": endpoint_rows(dash.pool, now),
            "in_flight": dash.live.in_flight(),
            "finished": dash.live.recent(),
            "history": dash.live.history(),
            "state_writes": dash.state_writes(),
            "quota_reading": dash.quota is not None,
        },
        headers={"Cache-Control": "no-store"},
    )


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def set_enabled(request: web.Request) -> web.Response:
    dash = request.app[DASHBOARD_KEY]
    if not dash.auth.csrf_ok(request):
        return _refuse(403, "missing or wrong X-Interlock-CSRF header: reload the dashboard")
    account, action = request.match_info["account"], request.match_info["action"]
    try:
        dash.pool.set_enabled(account, action == "enable", dash.clock.now())
    except UnknownAccount:
        return _refuse(404, f"no account {escape(account[:80])} in the pool")
    log.info("dashboard: account %s %sd", account, action)
    return web.json_response({"id": account, "enabled": action == "enable"})


async def login_form(request: web.Request) -> web.Response:
    auth = request.app[AUTH_KEY]
    if not auth.needs_login:
        raise web.HTTPSeeOther(DASHBOARD)
    return _html(_static("login.html").replace("{{MESSAGE}}", ""))


async def login(request: web.Request) -> web.Response:
    auth = request.app[AUTH_KEY]
    if not auth.needs_login:
        raise web.HTTPSeeOther(DASHBOARD)
    form = await request.post()
    given = form.get("key")
    if isinstance(given, str) and auth.key_matches(given):
        response = web.HTTPSeeOther(DASHBOARD)
        auth.set_session(response)
        log.info("dashboard: signed in")
        raise response
    log.warning("dashboard: a sign-in with a wrong API key was refused")
    message = '<p class="error" role="alert">That is not the API key.</p>'
    return _html(_static("login.html").replace("{{MESSAGE}}", message), status=401)


def add_routes(app: web.Application) -> None:
    app.router.add_get(DASHBOARD, page)
    app.router.add_get(DASHBOARD + "/{name:app\\.js|app\\.css|favicon\\.svg}", asset)
    app.router.add_get(DASHBOARD + "/api/state", state)
    app.router.add_post(DASHBOARD + "/api/accounts/{account}/{action:enable|disable}", set_enabled)
    app.router.add_get(LOGIN, login_form)
    app.router.add_post(LOGIN, login)
