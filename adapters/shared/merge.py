"""What several interlock instances share about the pool, and how two views of it merge.

Each shared fact is an `Entry` under a field of an account, the account named by a stable key
that every instance computes alike (`account_key`: a hash of the email; never a local row id,
never a secret):

- `cooldown:<model>`: the account rests for the model until `until` (wall clock s). Merging
  keeps the later end: a cooldown only ever extends, on every instance.
- `enabled`, `invalid`: a person's or the pool's latest decision; merging keeps the newest
  (`at`, wall clock s), ties broken by the instance id and then the value, so every instance
  picks the same one.
- `quota:<model>`: the remaining fraction the upstream reported for the model (`at`: when it
  was read); merging keeps the newest reading, by the same rule.

`wins(new, old)` is the whole merge rule: it is a total order on entries of one field, so
applying any set of entries in any order, with repeats, leaves every replica with the same
entry per field (the convergence property, `tests/test_shared_merge.py`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

COOLDOWN = "cooldown:"
QUOTA = "quota:"


def account_key(email: str) -> str:
    """The account's name in shared state: the same on every instance, and no secret."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Entry:
    account: str  # account_key
    field: str  # "cooldown:<model>", "enabled", "invalid" or "quota:<model>"
    value: dict[
        str, Any
    ]  # {"until", "reason"} | {"enabled"} | {"reason", "verify_url"} | {"fraction"}
    at: float  # wall clock s of the change
    origin: str  # the instance that made it

    @property
    def slot(self) -> str:
        """The hash field this entry lives under."""
        return f"{self.account}|{self.field}"

    def rank(self) -> tuple[Any, ...]:
        """The merge order: a total order on the entries of one slot (the value itself breaks
        the last ties, so no two different entries rank equal)."""
        value = json.dumps(self.value, sort_keys=True)
        if self.field.startswith(COOLDOWN):
            return (float(self.value["until"]), self.at, self.origin, value)
        return (self.at, self.origin, value)

    def dumps(self) -> str:
        return json.dumps({"value": self.value, "at": self.at, "origin": self.origin})

    @classmethod
    def loads(cls, slot: str, text: str) -> Entry:
        account, _, field = slot.partition("|")
        data = json.loads(text)
        return cls(account, field, dict(data["value"]), float(data["at"]), str(data["origin"]))


def wins(new: Entry, old: Entry | None) -> bool:
    """Whether `new` replaces `old` (same slot) when the two views merge."""
    return old is None or new.rank() > old.rank()


class Replica:
    """A view of the shared state: the winning entry per slot."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def apply(self, entry: Entry) -> bool:
        """Merge one entry in; True when it changed the view."""
        if not wins(entry, self.entries.get(entry.slot)):
            return False
        self.entries[entry.slot] = entry
        return True
