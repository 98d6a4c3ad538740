"""Account management: importing the JavaScript proxy's accounts.json and listing accounts.

`import_js_accounts` reads the JS proxy's file (reference/seed-behaviour.md §2.1-§2.2), splits
its composite refresh tokens (`refresh|project|managedProject`), keeps rate limits still in
force, and never overwrites an account that exists. `format_accounts` renders the listing shown
by `interlock accounts list`: ids, emails, states, cooldowns and reasons, never a secret.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.quota_view import quota_lines
from adapters.store_sqlite import AccountInfo, Credentials, SQLiteStore
from engine.actions import format_duration


class AccountsFileError(Exception):
    """The file cannot be imported; the message names the file and the problem."""


@dataclass
class ImportReport:
    added: list[tuple[str, str]] = field(default_factory=list)  # (id, email)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (email or #index, why)


def split_refresh_token(composite: str) -> Credentials:
    """`refresh|project|managedProject` (the last two optional) into credentials."""
    parts = composite.split("|")
    return Credentials(
        refresh_token=parts[0] or None,
        project_id=(parts[1] or None) if len(parts) > 1 else None,
        managed_project_id=(parts[2] or None) if len(parts) > 2 else None,
    )


def _read(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AccountsFileError(f"{path}: no such file") from None
    except OSError as err:
        raise AccountsFileError(f"{path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError:
        raise AccountsFileError(f"{path}: not a text file (invalid UTF-8)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise AccountsFileError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    accounts = data.get("accounts") if isinstance(data, dict) else None
    if not isinstance(accounts, list):
        raise AccountsFileError(f'{path}: expected an object with an "accounts" list')
    return accounts


def import_js_accounts(
    path: Path, store: SQLiteStore, *, wall: float | None = None
) -> ImportReport:
    """Import every usable account of a JS accounts.json into `store`."""
    now = time.time() if wall is None else wall
    report = ImportReport()
    for index, entry in enumerate(_read(path)):
        if not isinstance(entry, dict) or not isinstance(entry.get("email"), str):
            report.skipped.append((f"#{index}", "no email"))
            continue
        email = entry["email"]
        source = entry.get("source", "oauth")
        if source == "oauth" and isinstance(entry.get("refreshToken"), str):
            credentials = split_refresh_token(entry["refreshToken"])
        elif source == "manual" and isinstance(entry.get("apiKey"), str):
            credentials = Credentials(api_key=entry["apiKey"], project_id=entry.get("projectId"))
        elif source == "database":
            report.skipped.append((email, "desktop-app database accounts are not supported"))
            continue
        else:
            report.skipped.append((email, f"no credentials for source {source!r}"))
            continue
        cooldowns = {}
        limits = entry.get("modelRateLimits")
        for model, limit in limits.items() if isinstance(limits, dict) else []:
            reset = limit.get("resetTime") if isinstance(limit, dict) else None
            if (
                isinstance(reset, (int, float))
                and limit.get("isRateLimited")
                and reset / 1000 > now
            ):
                cooldowns[str(model)] = (reset / 1000.0, "rate limited (imported)")
        invalid = bool(entry.get("isInvalid"))
        account_id = store.add_account(
            email,
            credentials,
            source=source,
            enabled=entry.get("enabled") is not False,
            invalid_reason=(entry.get("invalidReason") or "invalid (imported)")
            if invalid
            else None,
            verify_url=entry.get("verifyUrl") if invalid else None,
            cooldowns=cooldowns,
        )
        if account_id is None:
            report.skipped.append((email, "already present (left unchanged)"))
        else:
            report.added.append((account_id, email))
    return report


def _remaining(until: float, now: float) -> str:
    return format_duration(max(0.0, until - now) * 1000.0)


def format_accounts(accounts: list[AccountInfo], *, now: float | None = None) -> str:
    """A human listing: one line per account, then its cooldowns and reasons."""
    if not accounts:
        return "no accounts (add one with `interlock accounts login` or `accounts import`)"
    wall = time.time() if now is None else now
    lines = []
    for a in accounts:
        state = (
            "disabled"
            if not a.enabled
            else "invalid"
            if a.invalid_reason
            else "cooling"
            if a.cooldowns
            else "ok"
        )
        tier = f"  tier {a.tier}" if a.tier else ""
        lines.append(f"{a.id}  {a.email}  {state}  ({a.source}){tier}")
        if a.invalid_reason:
            lines.append(f"    invalid: {a.invalid_reason}")
        if a.verify_url:
            lines.append(f"    verify at: {a.verify_url}")
        for model, (until, reason) in sorted(a.cooldowns.items()):
            lines.append(f"    {model}: {reason}, {_remaining(until, wall)} left")
        lines.extend(quota_lines(a.quota, wall=wall))
    return "\n".join(lines)


def accounts_json(accounts: list[AccountInfo]) -> list[dict[str, Any]]:
    return [
        {
            "id": a.id,
            "email": a.email,
            "source": a.source,
            "enabled": a.enabled,
            "invalid_reason": a.invalid_reason,
            "verify_url": a.verify_url,
            "cooldowns": {m: {"until": u, "reason": r} for m, (u, r) in a.cooldowns.items()},
            "tier": a.tier,
            "quota": {
                m: {
                    "remaining_fraction": q.remaining_fraction,
                    "reset_time": q.reset_time,
                    "read_at": q.read_at,
                }
                for m, q in a.quota.items()
            },
        }
        for a in accounts
    ]
