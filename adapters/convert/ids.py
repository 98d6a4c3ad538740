"""Identifier factories for synthesised Anthropic ids (``msg_<32 hex>``, ``toolu_<24 hex>``).

An ``IdFactory`` takes the prefix (``"msg"`` or ``"toolu"``) and returns a complete id. The
default draws random hex; tests inject ``SequentialIds`` to make every id predictable.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

IdFactory = Callable[[str], str]

_HEX_DIGITS = {"msg": 32, "toolu": 24}


def random_id(prefix: str) -> str:
    """``msg_`` + 32 random hex digits, ``toolu_`` + 24 (other prefixes: 24)."""
    digits = _HEX_DIGITS.get(prefix, 24)
    return f"{prefix}_{secrets.token_hex(digits // 2)}"


class SequentialIds:
    """Deterministic ids: ``msg_000…001``, ``toolu_000…001``, ``toolu_000…002``, … (one counter
    per prefix, zero-padded to the real width)."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        count = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = count
        digits = _HEX_DIGITS.get(prefix, 24)
        return f"{prefix}_{count:0{digits}x}"
