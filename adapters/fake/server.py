"""`FakeUpstream`: the fake Cloud Code API and Google token endpoint, served on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Self

from aiohttp import web

from adapters.fake.handlers import build_auth_app, build_endpoint_app
from adapters.fake.state import FakeState

SHUTDOWN_TIMEOUT = 1.0


def loopback_host(host: str) -> str:
    """`host` if it is a loopback address ("localhost" means 127.0.0.1); ValueError otherwise:
    the fake upstream hands out tokens to anyone who asks, so it never listens elsewhere."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(
        f"the fake upstream only listens on loopback (127.0.0.1, ::1 or localhost), not {host!r}"
    )


class FakeUpstream(FakeState):
    """A scriptable fake of the Cloud Code API (one site per endpoint name) and of Google's
    OAuth token and userinfo endpoints (the "auth" site, which also serves /_fake/ admin
    routes). Use `await start()` / `await stop()` or `async with FakeUpstream() as fake:`."""

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        check_project: bool = False,
    ) -> None:
        super().__init__(
            client_id=client_id, client_secret=client_secret, check_project=check_project
        )
        self._runners: list[web.AppRunner] = []
        self._urls: dict[str, str] = {}
        self._auth_url: str | None = None

    @property
    def running(self) -> bool:
        return self._auth_url is not None

    @property
    def urls(self) -> dict[str, str]:
        """{endpoint name: base URL} of the running Cloud Code sites."""
        return dict(self._urls)

    @property
    def auth_url(self) -> str:
        """Base URL of the token/userinfo/admin site."""
        if self._auth_url is None:
            raise RuntimeError("the fake upstream is not running")
        return self._auth_url

    @property
    def token_url(self) -> str:
        return self.auth_url + "/token"

    @property
    def userinfo_url(self) -> str:
        return self.auth_url + "/oauth2/v1/userinfo"

    async def start(
        self,
        endpoints: Sequence[str] = ("daily", "prod"),
        *,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
    ) -> dict[str, str]:
        """Serve one Cloud Code site per endpoint name and the auth site, each on `host` with
        the port in `ports` (keys: endpoint names and "auth"; default 0, OS-assigned). Returns
        {endpoint name: base URL}."""
        if self._runners:
            raise RuntimeError("the fake upstream is running already")
        bind = loopback_host(host)
        names = list(endpoints)
        if not names or len(set(names)) != len(names) or "auth" in names:
            raise ValueError(f"endpoint names must be distinct, non-empty, not 'auth': {names}")
        wanted = dict(ports or {})
        self._closing = asyncio.Event()
        try:
            for name in names:
                app = build_endpoint_app(self, name)
                self._urls[name] = await self._serve(app, bind, wanted.get(name, 0))
            self._auth_url = await self._serve(build_auth_app(self), bind, wanted.get("auth", 0))
        except BaseException:
            await self.stop()
            raise
        return dict(self._urls)

    async def _serve(self, app: web.Application, host: str, port: int) -> str:
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{bound}"

    async def stop(self) -> None:
        """Release hanging answers, close every site; scripts, accounts and log are kept."""
        if self._closing is not None:
            self._closing.set()
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()
        self._urls = {}
        self._auth_url = None

    async def __aenter__(self) -> Self:
        if not self.running:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
