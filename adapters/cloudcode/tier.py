"""The subscription tier of an account, from its loadCodeAssist answer (seed §2.7).

`paidTier.id` wins over `currentTier.id`; the id is kept as the upstream wrote it and also
named: an id containing `ultra` is "ultra"; `standard-tier` or one containing `pro` or
`premium` is "pro"; one containing `free` is "free"; anything else is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class CodeAssist(Protocol):
    async def load_code_assist(self, account_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Tier:
    name: str  # "ultra", "pro", "free" or "unknown"
    id: str | None  # as the upstream wrote it


def tier_name(tier_id: str) -> str:
    lowered = tier_id.lower()
    if "ultra" in lowered:
        return "ultra"
    if lowered == "standard-tier" or "pro" in lowered or "premium" in lowered:
        return "pro"
    if "free" in lowered:
        return "free"
    return "unknown"


def tier_of(answer: Any) -> Tier:
    """The tier a loadCodeAssist answer reports ("unknown" when it reports none)."""
    if isinstance(answer, dict):
        for key in ("paidTier", "currentTier"):
            given = answer.get(key)
            if isinstance(given, dict) and isinstance(given.get("id"), str) and given["id"]:
                return Tier(tier_name(given["id"]), given["id"])
    return Tier("unknown", None)


class TierReader:
    """`await reader(account_id)`: the account's tier, read with loadCodeAssist through the
    credentials manager (`LookupError` when no endpoint answered)."""

    def __init__(self, credentials: CodeAssist) -> None:
        self._credentials = credentials

    async def __call__(self, account_id: str) -> Tier:
        answer = await self._credentials.load_code_assist(account_id)
        if answer is None:
            raise LookupError("no endpoint answered loadCodeAssist")
        return tier_of(answer)
