"""Quota as people and programs see it: the JSON of `GET /quota` and the bars of
`interlock accounts list`. Accounts are named by their opaque id and labelled by their email
(both already shown by `/accounts`); no token or secret is ever part of a reading.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from adapters.quota import Reading
from adapters.store_sqlite import AccountInfo, QuotaRow
from engine.pool import AccountPool

BAR_WIDTH = 20


def iso(wall: float | None) -> str | None:
    """RFC 3339 UTC (seconds) of a wall-clock time."""
    if wall is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def quota_json(
    accounts: list[AccountInfo],
    readings: Mapping[str, Reading],
    pool: AccountPool,
    *,
    now: float,
    wall: float,
    reading: bool,
) -> dict[str, Any]:
    """`GET /quota`: per account (id, label, tier) and model, the remaining fraction and reset
    time as last read, and the rest in force, if any (from a reading or from a 429)."""
    rows = []
    for info in accounts:
        if info.id not in pool.account_ids:
            continue
        last = readings.get(info.id, Reading())
        models: dict[str, Any] = {}
        for model, quota in last.models.items():
            rest = pool.cooldown(info.id, model, now)
            models[model] = {
                "remaining_fraction": quota.remaining_fraction,
                "reset_time": quota.reset_time,
                "resting_until": iso(wall + (rest.until - now)) if rest else None,
                "rest_reason": rest.reason if rest else None,
            }
        rows.append(
            {
                "id": info.id,
                "label": info.email,
                "tier": last.tier.name if last.tier else None,
                "tier_id": last.tier.id if last.tier else None,
                "read_at": iso(last.read_at),
                "error": last.error,
                "models": models,
            }
        )
    return {"reading": reading, "accounts": rows}


def bar(fraction: float | None, width: int = BAR_WIDTH) -> str:
    """`[########------------]  40%` (`[?...]` when the fraction was not reported)."""
    if fraction is None:
        return "[" + "?" * width + "]   ?"
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {round(fraction * 100):3d}%"


def quota_lines(rows: Mapping[str, QuotaRow], *, wall: float) -> list[str]:
    """One line per model: its bar and when it resets, under an account of the listing."""
    if not rows:
        return []
    width = max(len(model) for model in rows)
    read = min(row.read_at for row in rows.values())
    lines = [f"    quota (read {_ago(wall - read)} ago):"]
    for model, row in rows.items():
        line = f"      {model:<{width}}  {bar(row.remaining_fraction)}"
        if row.reset_time:
            line += f"  resets {row.reset_time}"
        lines.append(line)
    return lines


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
