"""The signature cache is bounded in size (LRU) and time (TTL), with time passed in."""

from __future__ import annotations

import pytest

from adapters.convert.signatures import DEFAULT_TTL_SECONDS, SignatureCache

SIG = "S" * 60


def sig(n: int) -> str:
    return f"{n:060d}"


def test_tool_signature_is_remembered_until_its_ttl_expires() -> None:
    cache = SignatureCache(ttl_seconds=100.0)
    cache.remember_tool_signature("toolu_1", SIG, now=1000.0)
    assert cache.tool_signature("toolu_1", now=1099.9) == SIG
    assert cache.tool_signature("toolu_1", now=1100.0) is None
    assert cache.tool_signature_count == 0


def test_default_ttl_is_two_hours() -> None:
    cache = SignatureCache()
    cache.remember_family(SIG, "claude", now=0.0)
    assert DEFAULT_TTL_SECONDS == 7200.0
    assert cache.family_of(SIG, now=7199.0) == "claude"
    assert cache.family_of(SIG, now=7200.0) is None


def test_rewriting_an_entry_restarts_its_ttl() -> None:
    cache = SignatureCache(ttl_seconds=10.0)
    cache.remember_family(SIG, "gemini", now=0.0)
    cache.remember_family(SIG, "gemini", now=8.0)
    assert cache.family_of(SIG, now=15.0) == "gemini"


def test_least_recently_used_entry_is_evicted_beyond_max_entries() -> None:
    cache = SignatureCache(max_entries=3)
    for n in range(3):
        cache.remember_family(sig(n), "claude", now=float(n))
    assert cache.family_of(sig(0), now=3.0) == "claude"  # 0 is now the most recently used
    cache.remember_family(sig(3), "claude", now=4.0)
    assert cache.family_count == 3
    assert cache.family_of(sig(1), now=5.0) is None
    assert [cache.family_of(sig(n), now=5.0) for n in (0, 2, 3)] == ["claude"] * 3


def test_writes_sweep_expired_entries_so_the_cache_does_not_hold_dead_signatures() -> None:
    cache = SignatureCache(ttl_seconds=10.0)
    for n in range(5):
        cache.remember_tool_signature(f"toolu_{n}", sig(n), now=0.0)
    cache.remember_tool_signature("toolu_new", SIG, now=20.0)
    assert cache.tool_signature_count == 1


def test_purge_drops_everything_expired() -> None:
    cache = SignatureCache(ttl_seconds=10.0)
    cache.remember_family(sig(1), "claude", now=0.0)
    cache.remember_tool_signature("toolu_1", SIG, now=5.0)
    cache.purge(now=12.0)
    assert (cache.family_count, cache.tool_signature_count) == (0, 1)


def test_short_signatures_are_not_real_and_are_not_remembered() -> None:
    cache = SignatureCache()
    cache.remember_tool_signature("toolu_1", "short", now=0.0)
    cache.remember_family("short", "claude", now=0.0)
    assert cache.tool_signature("toolu_1", now=0.0) is None
    assert cache.family_of("short", now=0.0) is None


def test_clearing_families_keeps_tool_signatures() -> None:
    cache = SignatureCache()
    cache.remember_family(SIG, "claude", now=0.0)
    cache.remember_tool_signature("toolu_1", SIG, now=0.0)
    cache.clear_families()
    assert cache.family_of(SIG, now=0.0) is None
    assert cache.tool_signature("toolu_1", now=0.0) == SIG


def test_bounds_must_be_sensible() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        SignatureCache(max_entries=0)
    with pytest.raises(ValueError, match="ttl_seconds"):
        SignatureCache(ttl_seconds=0)
