"""Thinking-signature memory (seed §5.4), bounded in size and time and owned by the caller.

Two maps: (a) tool_use id -> the ``thoughtSignature`` Gemini put on that functionCall (clients such
as Claude Code strip the non-standard field, so the next request restores it from here), and (b)
signature -> the model family that produced it (thinking blocks are replayed only to the family
that signed them). Each map is an LRU of at most ``max_entries`` entries whose entries expire
``ttl_seconds`` after they were written. Time is always passed in; nothing here reads a clock.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

MIN_SIGNATURE_LENGTH = 50
"""Signatures shorter than this are not real signatures (seed §1.1 ``MIN_SIGNATURE_LENGTH``)."""

DEFAULT_TTL_SECONDS = 2 * 60 * 60.0
DEFAULT_MAX_ENTRIES = 10_000

V = TypeVar("V")


def is_valid_signature(signature: object) -> bool:
    """A string of at least ``MIN_SIGNATURE_LENGTH`` characters."""
    return isinstance(signature, str) and len(signature) >= MIN_SIGNATURE_LENGTH


class _ExpiringLru(Generic[V]):
    """An LRU map whose entries also expire a fixed time after they were written."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def put(self, key: str, value: V, now: float) -> None:
        self._entries[key] = (now + self._ttl, value)
        self._entries.move_to_end(key)
        # Cheap amortised sweep: expired entries at the least-recently-used end go first.
        while self._entries:
            oldest_expiry, _ = next(iter(self._entries.values()))
            if now < oldest_expiry:
                break
            self._entries.popitem(last=False)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def get(self, key: str, now: float) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if now >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def purge(self, now: float) -> None:
        expired = [key for key, (expires_at, _) in self._entries.items() if now >= expires_at]
        for key in expired:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class SignatureCache:
    """The two signature maps of seed §5.4, each bounded by ``max_entries`` (least recently used
    evicted first) and ``ttl_seconds`` (default 2 h, counted from the last write)."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._tool_signatures: _ExpiringLru[str] = _ExpiringLru(max_entries, ttl_seconds)
        self._families: _ExpiringLru[str] = _ExpiringLru(max_entries, ttl_seconds)

    def remember_tool_signature(self, tool_use_id: str, signature: str, now: float) -> None:
        """Remember the signature Gemini attached to the functionCall answered as
        ``tool_use_id``; signatures shorter than 50 characters are ignored."""
        if tool_use_id and is_valid_signature(signature):
            self._tool_signatures.put(tool_use_id, signature, now)

    def tool_signature(self, tool_use_id: str, now: float) -> str | None:
        return self._tool_signatures.get(tool_use_id, now)

    def remember_family(self, signature: str, family: str, now: float) -> None:
        """Remember which model family produced a thinking signature (>= 50 characters)."""
        if is_valid_signature(signature):
            self._families.put(signature, family, now)

    def family_of(self, signature: str, now: float) -> str | None:
        return self._families.get(signature, now)

    def purge(self, now: float) -> None:
        """Drop every expired entry now (reads and writes also drop them lazily)."""
        self._tool_signatures.purge(now)
        self._families.purge(now)

    def clear_families(self) -> None:
        """Forget every signature family (the seed's ``/test/clear-signature-cache``)."""
        self._families.clear()

    def clear(self) -> None:
        self._tool_signatures.clear()
        self._families.clear()

    @property
    def tool_signature_count(self) -> int:
        return len(self._tool_signatures)

    @property
    def family_count(self) -> int:
        return len(self._families)
