"""Who may use the dashboard, and how its state-changing calls are protected.

- **Without an API key** the dashboard is open, like every route (the proxy binds 127.0.0.1 by
  default; `adapters.web_guard` keeps other sites' pages out).
- **With an API key** a browser cannot send `x-api-key` on a page load, so `/dashboard/login`
  takes the key once in a form and sets a cookie (`HttpOnly`, `SameSite=Strict`, path
  `/dashboard`) holding a random session token of this process; the dashboard and its API accept
  that cookie instead of the key (nothing else does). The token dies with the process.
- **State-changing calls** (`POST /dashboard/api/...`) also need the header `X-Interlock-CSRF`
  with this process's CSRF token, which only the dashboard page carries: a cross-site form
  cannot set a header, and a cross-site script that tries needs a CORS preflight the proxy never
  grants (and `web_guard` refuses cross-site requests before this check).
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web

DASHBOARD = "/dashboard"
LOGIN = "/dashboard/login"
SESSION_COOKIE = "interlock_dashboard"
CSRF_HEADER = "X-Interlock-CSRF"


class DashboardAuth:
    def __init__(self, api_key: str | None) -> None:
        self._key = api_key.encode() if api_key else None
        self.session = secrets.token_urlsafe(32)
        self.csrf = secrets.token_urlsafe(32)

    @property
    def needs_login(self) -> bool:
        return self._key is not None

    def key_matches(self, given: str) -> bool:
        given_bytes = given.encode("utf-8", "surrogateescape")
        return self._key is not None and hmac.compare_digest(given_bytes, self._key)

    def signed_in(self, request: web.Request) -> bool:
        """Whether the request carries this process's session cookie (dashboard paths only)."""
        if not request.path.startswith(DASHBOARD):
            return False
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return hmac.compare_digest(cookie.encode("utf-8", "surrogateescape"), self.session.encode())

    def csrf_ok(self, request: web.Request) -> bool:
        given = request.headers.get(CSRF_HEADER, "")
        return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.csrf.encode())

    def set_session(self, response: web.StreamResponse) -> None:
        response.set_cookie(
            SESSION_COOKIE, self.session, path=DASHBOARD, httponly=True, samesite="Strict"
        )
