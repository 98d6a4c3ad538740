"""The `interlock` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from adapters.accounts import AccountsFileError, accounts_json, format_accounts, import_js_accounts
from adapters.config import ENVIRONMENT, ConfigError, Settings, load_settings
from adapters.store_sqlite import Credentials, SQLiteStore, StoreError, default_path
from engine import diagram


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def _state_path(args: argparse.Namespace) -> Path:
    return Path(args.state or os.environ.get("INTERLOCK_STATE") or default_path())


def _store(args: argparse.Namespace, *, readonly: bool = False) -> SQLiteStore:
    return SQLiteStore(_state_path(args), readonly=readonly)


def _account_id(store: SQLiteStore, key: str) -> str:
    found = store.find(key)
    if found is None:
        raise UsageError(f"no account {key!r} (see `interlock accounts list`)")
    return found


def _accounts_import(args: argparse.Namespace) -> int:
    store = _store(args)
    report = import_js_accounts(Path(args.path), store)
    for account_id, email in report.added:
        print(f"added {account_id}  {email}")
    for who, why in report.skipped:
        print(f"skipped {who}: {why}")
    print(f"{len(report.added)} added, {len(report.skipped)} skipped")
    return 0


def _accounts_list(args: argparse.Namespace) -> int:
    path = _state_path(args)
    if not path.exists():
        print(f"no accounts yet ({path} does not exist)")
        return 0
    accounts = _store(args, readonly=True).accounts()
    if args.json:
        print(json.dumps(accounts_json(accounts), indent=2))
    else:
        print(format_accounts(accounts))
    return 0


def _read_secret(value: str, what: str) -> str:
    secret = sys.stdin.readline().strip() if value == "-" else value.strip()
    if not secret:
        raise UsageError(f"empty {what}")
    return secret


def _accounts_add(args: argparse.Namespace) -> int:
    token = _read_secret(args.refresh_token, "refresh token")
    credentials = Credentials(refresh_token=token, project_id=args.project)
    account_id = _store(args).add_account(args.email, credentials)
    if account_id is None:
        raise UsageError(f"an account for {args.email} exists already (left unchanged)")
    print(f"added {account_id}  {args.email}")
    return 0


def _accounts_login(args: argparse.Namespace) -> int:
    from adapters.oauth_login import run_login  # noqa: PLC0415 - aiohttp loads only to log in

    settings = load_settings(Path(args.config) if args.config else None)
    return run_login(args, settings, _store(args))


def _accounts_remove(args: argparse.Namespace) -> int:
    store = _store(args)
    account_id = _account_id(store, args.account)
    store.remove_account(account_id)
    print(f"removed {account_id}")
    return 0


def _accounts_clear_cooldowns(args: argparse.Namespace) -> int:
    store = _store(args)
    account_id = _account_id(store, args.account)
    cleared = store.clear_cooldowns(account_id, args.model)
    what = f"{args.model}'s cooldown" if args.model else "every cooldown"
    print(f"cleared {what} of {account_id} ({cleared} found)")
    return 0


def _accounts_enable(args: argparse.Namespace) -> int:
    store = _store(args)
    account_id = _account_id(store, args.account)
    store.set_enabled(account_id, args.enable)
    if args.enable:
        store.clear_invalid(account_id)
    print(f"{'enabled' if args.enable else 'disabled'} {account_id}")
    return 0


def _diagram(args: argparse.Namespace) -> int:
    try:
        return _write_diagrams(args)
    except OSError as err:
        where = err.filename or args.out
        raise UsageError(f"cannot write {where}: {err.strerror or err}") from None


def _write_diagrams(args: argparse.Namespace) -> int:
    from adapters.trace import path as graphviz  # noqa: PLC0415 - Graphviz helpers, only here

    out = Path(args.out)
    stale = []
    generated = diagram.files()
    for name, text in generated.items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(str(path))
        if not args.check:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    # The SVG is rendered by Graphviz when installed, and checked by the DOT text it was
    # rendered from (its stamp), never byte for byte: Graphviz versions draw differently.
    svg = out / diagram.DOT_FILE.replace(".dot", ".svg")
    stamp = graphviz.svg_stamp(generated[diagram.DOT_FILE])
    svg_stale = svg.exists() and stamp not in svg.read_text(encoding="utf-8", errors="replace")
    problem = ""
    if args.check and svg_stale:
        stale.append(str(svg))
    elif not args.check and (svg_stale or not svg.exists()):
        try:
            svg.write_text(
                graphviz.render_svg(generated[diagram.DOT_FILE], comment=stamp), encoding="utf-8"
            )
            stale.append(str(svg))
        except graphviz.GraphvizMissing:
            if svg_stale:
                problem = (
                    f"{svg} is stale and Graphviz's `dot` is not on PATH: install Graphviz "
                    "and rerun, or delete it"
                )
            else:
                print(f"interlock diagram: Graphviz's `dot` is not on PATH: {svg} not rendered")
        except graphviz.GraphvizError as err:
            problem = f"{svg} not rendered: {err}"
    readme = Path(args.readme)
    if readme.exists():
        current = readme.read_text(encoding="utf-8")
        text = diagram.embed_in_readme(current)
        if text != current:
            stale.append(str(readme))
            if not args.check:
                readme.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(
            f"interlock diagram: {out}/ is stale ({', '.join(stale)}); run `make diagrams`",
            file=sys.stderr,
        )
        return 1
    if stale:
        print(f"interlock diagram: wrote {', '.join(stale)}")
    elif not problem:
        print(f"interlock diagram: {out}/ and {readme} are up to date")
    if problem:
        print(f"interlock diagram: {problem}", file=sys.stderr)
        return 1
    return 0


def _serve(args: argparse.Namespace) -> int:
    from adapters import serve  # noqa: PLC0415 - aiohttp and the server load only to serve

    policy: dict[str, object] = {}
    if args.preset:
        policy["preset"] = args.preset
    if args.strategy:
        policy["strategy"] = args.strategy
    if args.fallback:
        policy["fallback_enabled"] = True
    settings = load_settings(
        Path(args.config) if args.config else None,
        overrides={
            "server": {
                "host": args.host,
                "port": args.port,
                "state": args.state,
                "record": args.record,
                "record_max_mb": args.record_max_mb,
                "log_format": args.log_format,
                "workers": args.workers,
            },
            "policy": policy,
        },
    )
    serve.configure_logging(args.log_level, settings.server.log_format)
    if settings.server.workers > 1:
        if args.sandbox:
            raise UsageError("--workers needs real accounts: it is not available with --sandbox")
        from adapters.workers import run_workers  # noqa: PLC0415

        try:
            return run_workers(settings, args.log_level)
        except serve.ServeError as err:
            raise UsageError(str(err)) from None
    serve.choose_event_loop(settings.server.event_loop)
    try:
        return asyncio.run(
            serve.serve(settings, sandbox_accounts=args.accounts if args.sandbox else None)
        )
    except serve.ServeError as err:
        raise UsageError(str(err)) from None


def _fake_upstream(args: argparse.Namespace) -> int:
    from adapters.fake.command import run_from_args  # noqa: PLC0415 - loaded only when used

    return run_from_args(args)


def _replay(args: argparse.Namespace) -> int:
    from adapters.trace import command  # noqa: PLC0415 - loaded only to replay

    try:
        return command.run(args)
    except (command.TraceError, command.ReplayUsageError) as err:
        raise UsageError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interlock",
        description="An Anthropic-API proxy whose core is an explicit state-machine retry engine.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser(
        "diagram",
        help="write the state chart and transition table generated from the engine",
        description="Generate diagrams/ (Mermaid and Graphviz DOT charts, Markdown transition "
        "table) from the engine's transition table; the SVG chart too when Graphviz's `dot` is "
        "installed.",
    )
    d.add_argument("--out", default="diagrams", help="output directory (default: diagrams)")
    d.add_argument(
        "--readme",
        default="README.md",
        help="also refresh the chart embedded in this file between its markers "
        "(default: README.md; skipped when the file does not exist)",
    )
    d.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if any file is stale (the SVG, if present, by the DOT text "
        "it was rendered from; Graphviz is not needed)",
    )
    d.set_defaults(func=_diagram)

    sv = sub.add_parser(
        "serve",
        help="run the proxy (Claude Code: ANTHROPIC_BASE_URL=http://127.0.0.1:8080)",
        description="Run the Anthropic-API proxy. Settings come from --config (TOML: "
        + ", ".join(f"[{section}]" for section in Settings.model_fields)
        + "), then the environment ("
        + ", ".join(ENVIRONMENT)
        + "), then these flags. Model names resolve against the "
        "upstream's live model list (the built-in list until it is fetched): [models] aliases "
        "first, then listed names (also without a date suffix), then families (opus, sonnet, "
        "haiku: the best available, or the [models] opus / sonnet / haiku setting). Each "
        "account's quota and tier are read at start and every [quota] refresh_s (GET /quota). "
        "The dashboard is at http://HOST:PORT/dashboard ([server] dashboard = false turns it "
        "off). With [state] redis_url, several instances (and --workers) share one account pool "
        "through Redis; GET /health says whether Redis is reachable.",
    )
    sv.add_argument("--config", metavar="FILE", help="TOML configuration file")
    sv.add_argument("--host", help="address to bind (default 127.0.0.1; others need care)")
    sv.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    sv.add_argument(
        "--state",
        metavar="PATH",
        help="state database (default ~/.config/interlock/state.db); one serve per database: "
        "it is locked (<state>.lock) while serve runs",
    )
    sv.add_argument(
        "--preset", choices=["default", "many-accounts", "conservative"], help="retry policy preset"
    )
    sv.add_argument(
        "--strategy",
        choices=["sticky", "round-robin", "hybrid"],
        help="account selection strategy (default hybrid)",
    )
    sv.add_argument(
        "--fallback",
        action="store_true",
        help="fall back to the configured fallback model when a model is exhausted",
    )
    sv.add_argument(
        "--sandbox",
        action="store_true",
        help="serve from the built-in fake upstream with simulated accounts "
        "(try interlock without Google accounts)",
    )
    sv.add_argument(
        "--accounts",
        type=int,
        default=3,
        metavar="N",
        help="simulated accounts in sandbox mode (default 3)",
    )
    sv.add_argument(
        "--record",
        metavar="DIR",
        help="record every request as a trace in DIR (replay with `interlock replay`)",
    )
    sv.add_argument(
        "--record-max-mb",
        type=float,
        metavar="MB",
        help="stop recording when the trace file reaches this size (default 256)",
    )
    sv.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sv.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text (default) or one JSON object per line ([server] log_format)",
    )
    sv.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="N processes serving the port (default 1; [server] workers): they share the pool "
        "through Redis when [state] redis_url is set, else through the state database",
    )
    sv.set_defaults(func=_serve)

    fu = sub.add_parser(
        "fake-upstream",
        help="run the fake Cloud Code API and token endpoint on 127.0.0.1",
        description="A scriptable fake of the Cloud Code API and Google's token endpoint "
        "(loopback only), for tests, benchmarks and demos.",
    )
    from adapters.fake.command import add_arguments  # noqa: PLC0415 - keeps `accounts` light

    add_arguments(fu)
    fu.set_defaults(func=_fake_upstream)

    rp = sub.add_parser(
        "replay",
        help="replay recorded traces offline on a virtual clock",
        description="Replay traces (JSON Lines, see the README) offline: every request's "
        "timeline and outcome. --check exits 1 at the first difference from the recording; "
        "--set/--policy replay under another configuration and show what would change.",
    )
    from adapters.trace.command import add_arguments as add_replay_arguments  # noqa: PLC0415

    add_replay_arguments(rp)
    rp.set_defaults(func=_replay)

    a = sub.add_parser(
        "accounts",
        help="manage the Google accounts interlock serves requests with",
        description="Manage accounts in the state database. Works while `interlock serve` "
        "runs: changes take effect in the running proxy within 2 seconds and are never "
        "overwritten by it.",
    )
    a.add_argument(
        "--state",
        help="state database (default: $INTERLOCK_STATE or ~/.config/interlock/state.db)",
    )
    a.add_argument(
        "--config",
        metavar="FILE",
        help="TOML configuration (for login: [oauth] client_id and client_secret, or set "
        "INTERLOCK_OAUTH_CLIENT_ID and INTERLOCK_OAUTH_CLIENT_SECRET)",
    )
    acc = a.add_subparsers(dest="action", required=True, metavar="ACTION")
    lg = acc.add_parser(
        "login",
        help="add a Google account by signing in (OAuth with PKCE)",
        description="Sign in with Google in a browser (a loopback callback on 127.0.0.1:51121-"
        "51126), or with --no-browser paste the callback URL shown after signing in.",
    )
    from adapters.oauth_login import add_arguments as add_login_arguments  # noqa: PLC0415

    add_login_arguments(lg)
    lg.set_defaults(func=_accounts_login)
    imp = acc.add_parser(
        "import",
        help="import the JavaScript proxy's accounts.json",
        description="Import accounts from antigravity-claude-proxy's accounts.json "
        "(~/.config/antigravity-proxy/accounts.json). Existing accounts are left unchanged.",
    )
    imp.add_argument("path", help="path to accounts.json")
    imp.set_defaults(func=_accounts_import)
    ls = acc.add_parser("list", help="show every account, its cooldowns and reasons")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_accounts_list)
    add = acc.add_parser("add", help="add an account from an OAuth refresh token")
    add.add_argument("--email", required=True, help="the account's email (for display)")
    add.add_argument(
        "--refresh-token",
        required=True,
        help="the refresh token, or - to read it from standard input (keeps it out of "
        "your shell history)",
    )
    add.add_argument("--project", help="Cloud Code project id, if known")
    add.set_defaults(func=_accounts_add)
    for name, helptext, enable in (
        ("enable", "use an account again (also clears its invalid mark)", True),
        ("disable", "stop using an account", False),
    ):
        p = acc.add_parser(name, help=helptext)
        p.add_argument("account", help="account id or email")
        p.set_defaults(func=_accounts_enable, enable=enable)
    cc = acc.add_parser(
        "clear-cooldowns",
        help="forget an account's cooldowns (all models, or one)",
        description="Forget the cooldowns of an account (every model's, or one model's with "
        "--model), for when an upstream stated an absurd reset or the quota came back early. "
        "A running proxy clears them too within 2 seconds.",
    )
    cc.add_argument("account", help="account id or email")
    cc.add_argument("--model", help="only this model's cooldown")
    cc.set_defaults(func=_accounts_clear_cooldowns)
    rm = acc.add_parser("remove", help="delete an account and its credentials")
    rm.add_argument("account", help="account id or email")
    rm.set_defaults(func=_accounts_remove)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (UsageError, StoreError, AccountsFileError, ConfigError) as err:
        print(f"interlock: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `interlock replay ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
