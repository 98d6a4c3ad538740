"""Who may talk to the proxy: the checks every request passes before a handler sees it.

interlock listens on loopback and spends the Google accounts it holds; the attacker it keeps
out is a web page in the user's browser, which can send requests to 127.0.0.1 too. In order:

1. **Host** (against DNS rebinding: a page whose domain is re-pointed at 127.0.0.1 becomes
   same-origin with the proxy, and only `Host` still names the page's domain): it must name
   `localhost`, an IP address (a page on an IP address was served from that address, so no
   rebinding), or a name in `[server] allowed_hosts`; any port. Else 421.
2. **Cross-site**: a browser marks a request from another site with `Sec-Fetch-Site:
   cross-site` (or `same-site`: another port of localhost) and sends its `Origin`. Either, or an
   `Origin` that is not the proxy's own (`null` included), is refused with 403. Programs (the
   SDKs, Claude Code, curl) send neither.
3. **API key**, when one is configured: every route except the liveness probes (`GET`/`HEAD` of
   `/` and `/api/hello`, which answer a constant) needs it, as `x-api-key` or a bearer token,
   compared in constant time. Else 401. The dashboard (`adapters.dashboard.auth`) also takes
   its session cookie instead, and its login form is open; a page load without either goes
   to the login form.
4. **JSON only**: `POST /v1/*` needs `Content-Type: application/json` (parameters such as
   `charset` allowed): a page can send `text/plain`, form and multipart bodies, or none,
   cross-site without a CORS preflight. Else 415.

Each refusal is Anthropic's error JSON with `x-should-retry: false` and quotes at most a few
dozen characters of what the client sent.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from adapters.client_stream import error_response
from adapters.config import Settings
from adapters.convert.anthropic import quote
from adapters.dashboard.auth import DASHBOARD, LOGIN, DashboardAuth

PROBES = ("/", "/api/hello")
"""Liveness probes open without a key: Claude Code 2.1.x sends `HEAD /api/hello`."""
LOOPBACK_NAMES = frozenset({"localhost"})
"""Names always accepted in `Host`, besides any IP address."""
BROWSER_ONLY_SITES = frozenset({"cross-site", "same-site"})
"""`Sec-Fetch-Site` values that mean another site's page sent the request."""
JSON = "application/json"


def refuse(status: int, error_type: str, message: str) -> web.Response:
    return error_response(status, error_type, message, **{"x-should-retry": "false"})


def split_host(value: str) -> tuple[str, str] | None:
    """`name[:port]` or `[v6]:port` as (lower-case name without a trailing dot, port or "");
    None when it is not that shape."""
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = value.partition(":")
    if not name or (port and not port.isdigit()):
        return None
    return name.lower().rstrip("."), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(value: str, allowed: frozenset[str]) -> bool:
    """Whether a `Host` header names this proxy: `localhost`, an IP address, or an allowed
    name (`*` allows any)."""
    if "*" in allowed:
        return True
    parts = split_host(value)
    if parts is None:
        return False
    name = parts[0]
    return name in LOOPBACK_NAMES or name in allowed or _is_ip(name)


def same_origin(origin: str, host: str) -> bool:
    """Whether an `Origin` header names the origin the `Host` header addresses."""
    scheme, sep, rest = origin.partition("://")
    ours, theirs = split_host(host), split_host(rest) if sep and "/" not in rest else None
    if ours is None or theirs is None or scheme not in ("http", "https"):
        return False
    default = "443" if scheme == "https" else "80"
    return (theirs[0], theirs[1] or default) == (ours[0], ours[1] or default)


def _cross_site(request: web.Request) -> str | None:
    """What says the request came from another site's page, if anything does."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() in BROWSER_ONLY_SITES:
        return f"Sec-Fetch-Site: {quote(site)}"
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin, request.headers.get("Host", "")):
        return f"Origin {quote(origin)}"
    return None


def _given_key(request: web.Request) -> bytes:
    given = request.headers.get("x-api-key", "")
    auth = request.headers.get("Authorization", "")
    if not given and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    # header bytes that are not UTF-8 arrive as surrogates: compare them as the bytes they were
    return given.encode("utf-8", "surrogateescape")


def web_guard(settings: Settings, dashboard: DashboardAuth | None = None) -> Middleware:
    """The middleware that applies the checks above with these settings."""
    server = settings.server
    allowed = frozenset(server.allowed_hosts)
    expected = server.api_key.get_secret_value().encode() if server.api_key else None
    hosts = ", ".join(["127.0.0.1", "localhost", "[::1]", *server.allowed_hosts])

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if not host_allowed(host, allowed):
            return refuse(
                421,
                "invalid_request_error",
                f"Host {quote(host)} is not this proxy: interlock answers requests addressed "
                f"to {hosts} or an IP address, with any port (a guard against DNS rebinding); "
                "add the name to [server] allowed_hosts to use it",
            )
        cross = _cross_site(request)
        if cross is not None:
            return refuse(
                403,
                "permission_error",
                f"cross-site request refused ({cross}): interlock serves programs, not web pages",
            )
        probe = request.path in PROBES and request.method in ("GET", "HEAD")
        if (
            expected is not None
            and not probe
            and not hmac.compare_digest(_given_key(request), expected)
        ):
            if dashboard is not None and (request.path == LOGIN or dashboard.signed_in(request)):
                return await handler(request)
            if dashboard is not None and request.path == DASHBOARD and request.method == "GET":
                raise web.HTTPSeeOther(LOGIN)
            return refuse(401, "authentication_error", "invalid or missing API key")
        if (
            request.method == "POST"
            and request.path.startswith("/v1/")
            and request.content_type != JSON
        ):
            return refuse(
                415,
                "invalid_request_error",
                f"Content-Type {quote(request.headers.get('Content-Type', '(none)'))} is not "
                f"accepted: send the body as JSON with Content-Type: {JSON}",
            )
        return await handler(request)

    return guard
