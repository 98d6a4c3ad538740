"""`interlock fake-upstream`: run the fake upstream as a process (for the demo and by hand)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Mapping, Sequence

from adapters.fake.server import FakeUpstream, loopback_host
from adapters.fake.specs import SCRIPT_FORMAT

ENDPOINTS = ("daily", "prod")


async def run_fake_upstream(
    host: str = "127.0.0.1",
    ports: Mapping[str, int] | None = None,
    accounts: int = 2,
) -> FakeUpstream:
    """Start a fake upstream with the "daily" and "prod" endpoints and `accounts` accounts
    named account-1 ... account-N; `ports` maps "daily", "prod", "auth" to ports (0 or missing:
    OS-assigned). The caller stops it. ValueError for a host that is not loopback."""
    loopback_host(host)
    if accounts < 0:
        raise ValueError("accounts must be >= 0")
    fake = FakeUpstream()
    for index in range(1, accounts + 1):
        fake.add_account(f"account-{index}")
    await fake.start(ENDPOINTS, host=host, ports=ports)
    return fake


def describe(fake: FakeUpstream) -> dict[str, object]:
    """The base URLs and accounts, as printed by `main --json`."""
    return {
        "endpoints": fake.urls,
        "auth": fake.auth_url,
        "token_url": fake.token_url,
        "userinfo_url": fake.userinfo_url,
        "admin": {"script": fake.auth_url + "/_fake/script", "log": fake.auth_url + "/_fake/log"},
        "accounts": [
            {
                "name": a.name,
                "email": a.email,
                "refresh_token": a.refresh_token,
                "project": a.project,
            }
            for a in fake.accounts
        ],
    }


def _print_text(fake: FakeUpstream) -> None:
    print("interlock fake-upstream (loopback only; tokens are fake)")
    for name, url in fake.urls.items():
        print(f"  {name:<6} {url}")
    print(f"  {'auth':<6} {fake.auth_url}  (POST /token, GET /oauth2/v1/userinfo)")
    print(f"  {'admin':<6} {fake.auth_url}/_fake/script (POST), {fake.auth_url}/_fake/log (GET)")
    print("accounts (refresh tokens):")
    for a in fake.accounts:
        print(f"  {a.email}  {a.refresh_token}  project={a.project}")
    print("Ctrl+C stops it.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `interlock fake-upstream`, and the script format as the help's epilog."""
    parser.epilog = SCRIPT_FORMAT
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    for name in (*ENDPOINTS, "auth"):
        parser.add_argument(
            f"--port-{name}", type=int, default=0, help=f"port of the {name} site (0: any free)"
        )
    parser.add_argument("--accounts", type=int, default=2, help="number of accounts (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead")


async def serve(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM."""
    ports = {"daily": args.port_daily, "prod": args.port_prod, "auth": args.port_auth}
    fake = await run_fake_upstream(args.host, ports, args.accounts)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    try:
        if args.json:
            print(json.dumps(describe(fake)), flush=True)
        else:
            _print_text(fake)
            sys.stdout.flush()
        await stopping.wait()
    finally:
        await fake.stop()
    return 0


def run_from_args(args: argparse.Namespace) -> int:
    """Entry for a parsed `fake-upstream` sub-command."""
    try:
        loopback_host(args.host)
    except ValueError as exc:
        print(f"interlock fake-upstream: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interlock fake-upstream",
        description="Serve a scriptable fake of the Cloud Code API and Google's OAuth token "
        "endpoint on loopback.",
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`interlock fake-upstream [--host H] [--port-daily P] [--port-prod P] [--port-auth P]
    [--accounts N] [--json]`."""
    return run_from_args(build_parser().parse_args(argv))
