"""The SQLite state store keeps the pool's state across restarts, safely and readably."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.accounts import AccountsFileError, format_accounts, import_js_accounts
from adapters.cli import main as cli_main
from adapters.store_sqlite import AccountInfo, Credentials, SQLiteStore, StoreError
from engine.policy import Policy
from engine.pool import AccountPool

SECRET = "1//0gSECRET-refresh-token-value"
MODEL = "claude-sonnet-4-6"


class Wall:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_store(tmp_path: Path, wall: Wall) -> SQLiteStore:
    return SQLiteStore(tmp_path / "state.db", wall=wall)


def test_cooldowns_and_invalid_accounts_survive_a_restart(tmp_path: Path) -> None:
    wall = Wall(1_000_000.0)
    store = make_store(tmp_path, wall)
    a = store.add_account("a@example.com", Credentials(refresh_token=SECRET))
    b = store.add_account("b@example.com", Credentials(refresh_token=SECRET + "b"))
    assert a and b
    pool = AccountPool(Policy(), store=store, now=50.0)  # monotonic 50 s at wall 1,000,000
    pool.cool_down(a, MODEL, 50.0 + 3600.0, "quota exhausted", 50.0)
    pool.mark_invalid(b, "Token revoked - re-authentication required", None, 50.0)
    store.close()

    wall.t += 600.0  # ten minutes later, a new process whose monotonic clock reads 7.0
    again = AccountPool(Policy(), store=make_store(tmp_path, wall), now=7.0)
    rest = again.cooldown(a, MODEL, 7.0)
    assert rest is not None and rest.reason == "quota exhausted"
    assert rest.until == pytest.approx(7.0 + 3000.0)
    assert again.account(b).invalid_reason == "Token revoked - re-authentication required"


def test_expired_cooldowns_are_not_restored(tmp_path: Path) -> None:
    wall = Wall(1_000_000.0)
    store = make_store(tmp_path, wall)
    a = store.add_account("a@example.com", Credentials(refresh_token=SECRET))
    assert a
    AccountPool(Policy(), store=store, now=0.0).cool_down(a, MODEL, 60.0, "rate limited", 0.0)
    wall.t += 61.0
    assert AccountPool(Policy(), store=store, now=0.0).cooldown(a, MODEL, 0.0) is None


def test_the_database_and_its_journal_files_are_private(tmp_path: Path) -> None:
    store = make_store(tmp_path, Wall(0.0))
    store.add_account("a@example.com", Credentials(refresh_token=SECRET))
    for path in tmp_path.glob("state.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_another_process_can_list_accounts_while_the_store_is_open(tmp_path: Path) -> None:
    store = make_store(tmp_path, Wall(0.0))
    store.add_account("a@example.com", Credentials(refresh_token=SECRET))
    env = {**os.environ, "INTERLOCK_STATE": str(tmp_path / "state.db")}
    out = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "accounts", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout
    assert "a@example.com" in out and SECRET not in out
    store.add_account("b@example.com", Credentials(refresh_token=SECRET))  # still writable


def test_adding_an_existing_email_changes_nothing(tmp_path: Path) -> None:
    store = make_store(tmp_path, Wall(0.0))
    first = store.add_account("a@example.com", Credentials(refresh_token=SECRET))
    assert store.add_account("a@example.com", Credentials(refresh_token="other")) is None
    assert first and store.credentials(first).refresh_token == SECRET


def test_a_corrupt_database_is_reported_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"state\.db: not a readable interlock state database"):
        SQLiteStore(path)
    assert path.read_bytes() == b"this is not sqlite" * 100  # left as it was


def test_saving_an_account_removed_meanwhile_does_not_resurrect_it(tmp_path: Path) -> None:
    store = make_store(tmp_path, Wall(0.0))
    a = store.add_account("a@example.com", Credentials(refresh_token=SECRET))
    assert a
    pool = AccountPool(Policy(), store=store, now=0.0)
    store.remove_account(a)
    pool.cool_down(a, MODEL, 60.0, "rate limited", 0.0)
    assert store.accounts() == []


def test_credentials_never_show_in_their_repr() -> None:
    assert SECRET not in repr(Credentials(refresh_token=SECRET, project_id="p"))


JS_FILE = {
    "accounts": [
        {
            "email": "a@example.com",
            "source": "oauth",
            "enabled": True,
            "refreshToken": f"{SECRET}|user-project|managed-123",
            "modelRateLimits": {
                "claude-opus-4-6-thinking": {"isRateLimited": True, "resetTime": 2_000_000_000_000},
                "gemini-3-flash": {"isRateLimited": True, "resetTime": 1_000},
            },
        },
        {
            "email": "b@example.com",
            "source": "oauth",
            "enabled": False,
            "refreshToken": SECRET,
            "isInvalid": True,
            "invalidReason": "Account requires verification",
            "verifyUrl": "https://accounts.google.com/signin/continue?x=1",
        },
        {"email": "m@example.com", "source": "manual", "apiKey": "sk-manual-SECRET"},
        {"email": "c@example.com", "source": "database"},
        "junk",
    ],
    "settings": {},
    "activeIndex": 0,
}


def test_the_js_proxys_accounts_file_imports_with_composite_tokens_and_live_limits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(JS_FILE))
    store = make_store(tmp_path, Wall(1_900_000_000.0))
    report = import_js_accounts(path, store, wall=1_900_000_000.0)
    assert [e for _, e in report.added] == ["a@example.com", "b@example.com", "m@example.com"]
    assert [w for w, _ in report.skipped] == ["c@example.com", "#4"]
    a = store.find("a@example.com")
    assert a and store.credentials(a) == Credentials(
        refresh_token=SECRET, project_id="user-project", managed_project_id="managed-123"
    )
    listed = {x.email: x for x in store.accounts()}
    assert list(listed["a@example.com"].cooldowns) == ["claude-opus-4-6-thinking"]
    b = listed["b@example.com"]
    assert (b.enabled, b.invalid_reason) == (False, "Account requires verification")
    assert b.verify_url == "https://accounts.google.com/signin/continue?x=1"
    again = import_js_accounts(path, store, wall=1_900_000_000.0)
    assert again.added == [] and len(again.skipped) == 5
    text = format_accounts(store.accounts(), now=1_900_000_000.0)
    assert SECRET not in text and "sk-manual" not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"{not json", "not valid JSON (line 1"),
        (b"\xff\xfe\x00", "not a text file"),
        (b'{"accounts": 3}', 'expected an object with an "accounts" list'),
        (b"[]", 'expected an object with an "accounts" list'),
    ],
)
def test_an_unreadable_or_corrupt_accounts_file_is_refused_and_nothing_changes(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "accounts.json"
    if content is not None:
        path.write_bytes(content)
    store = make_store(tmp_path, Wall(0.0))
    store.add_account("keep@example.com", Credentials(refresh_token=SECRET))
    with pytest.raises(AccountsFileError, match=re.escape(message)):
        import_js_accounts(path, store)
    assert [a.email for a in store.accounts()] == ["keep@example.com"]


# a running proxy and `interlock accounts` share the database ---------------------------------
def cli(tmp_path: Path, *args: str) -> None:
    """`interlock accounts ...` on its own connection, as from another process."""
    assert cli_main(["accounts", "--state", str(tmp_path / "state.db"), *args]) == 0


def two_accounts(tmp_path: Path, wall: Wall) -> tuple[SQLiteStore, str, str]:
    store = make_store(tmp_path, wall)
    a = store.add_account("a@example.com", Credentials(refresh_token=SECRET))
    b = store.add_account("b@example.com", Credentials(refresh_token=SECRET + "b"))
    assert a and b
    return store, a, b


def listed(tmp_path: Path) -> dict[str, AccountInfo]:
    reader = SQLiteStore(tmp_path / "state.db", readonly=True, wall=Wall(1_000_000.0))
    try:
        return {info.email: info for info in reader.accounts()}
    finally:
        reader.close()


def test_a_cooldown_recorded_by_a_running_pool_keeps_an_account_the_cli_disabled_disabled(
    tmp_path: Path,
) -> None:
    store, a, _ = two_accounts(tmp_path, Wall(1_000_000.0))
    pool = AccountPool(Policy(), store=store, now=0.0)
    cli(tmp_path, "disable", "a@example.com")
    pool.cool_down(a, MODEL, 60.0, "rate limited", 0.0)
    after = listed(tmp_path)["a@example.com"]
    assert after.enabled is False
    assert after.cooldowns[MODEL] == (1_000_060.0, "rate limited")


def test_a_cooldown_recorded_by_a_running_pool_keeps_an_account_the_cli_enabled_enabled(
    tmp_path: Path,
) -> None:
    store, a, _ = two_accounts(tmp_path, Wall(1_000_000.0))
    store.set_enabled(a, False)
    pool = AccountPool(Policy(), store=store, now=0.0)
    cli(tmp_path, "enable", "a@example.com")
    pool.cool_down(a, MODEL, 60.0, "rate limited", 0.0)
    assert listed(tmp_path)["a@example.com"].enabled is True


def test_an_invalid_mark_the_cli_cleared_stays_cleared_when_the_pool_records_a_cooldown(
    tmp_path: Path,
) -> None:
    store, a, _ = two_accounts(tmp_path, Wall(1_000_000.0))
    pool = AccountPool(Policy(), store=store, now=0.0)
    pool.mark_invalid(a, "Account requires verification", "https://verify.example", 0.0)
    assert listed(tmp_path)["a@example.com"].invalid_reason == "Account requires verification"
    cli(tmp_path, "enable", "a@example.com")
    pool.cool_down(a, MODEL, 60.0, "rate limited", 0.0)
    after = listed(tmp_path)["a@example.com"]
    assert (after.invalid_reason, after.verify_url) == (None, None)


def test_a_stored_cooldown_only_ever_extends_and_other_models_keep_theirs(tmp_path: Path) -> None:
    store, a, _ = two_accounts(tmp_path, Wall(1_000_000.0))
    first = AccountPool(Policy(), store=store, now=0.0)
    second = AccountPool(Policy(), store=make_store(tmp_path, Wall(1_000_000.0)), now=0.0)
    first.cool_down(a, MODEL, 3600.0, "quota exhausted", 0.0)
    first.cool_down(a, "gemini-3-flash", 600.0, "quota exhausted", 0.0)
    second.cool_down(a, MODEL, 60.0, "rate limited", 0.0)  # a stale, shorter view of `a`
    assert listed(tmp_path)["a@example.com"].cooldowns == {
        MODEL: (1_003_600.0, "quota exhausted"),
        "gemini-3-flash": (1_000_600.0, "quota exhausted"),
    }


def test_a_cooldown_on_an_account_the_cli_removed_writes_nothing(tmp_path: Path) -> None:
    store, a, _ = two_accounts(tmp_path, Wall(1_000_000.0))
    pool = AccountPool(Policy(), store=store, now=0.0)
    cli(tmp_path, "remove", "a@example.com")
    pool.cool_down(a, MODEL, 60.0, "rate limited", 0.0)
    pool.mark_invalid(a, "Token revoked", None, 0.0)
    pool.set_enabled(a, False, 0.0)
    assert list(listed(tmp_path)) == ["b@example.com"]
    assert store.credentials(a) == Credentials()


def test_clear_cooldowns_forgets_one_models_or_every_cooldown_of_an_account(
    tmp_path: Path,
) -> None:
    store, a, _ = two_accounts(tmp_path, Wall(1_000_000.0))
    pool = AccountPool(Policy(), store=store, now=0.0)
    pool.cool_down(a, MODEL, 3600.0, "quota exhausted", 0.0)
    pool.cool_down(a, "gemini-3-flash", 600.0, "quota exhausted", 0.0)
    cli(tmp_path, "clear-cooldowns", "a@example.com", "--model", "gemini-3-flash")
    assert list(listed(tmp_path)["a@example.com"].cooldowns) == [MODEL]
    cli(tmp_path, "clear-cooldowns", "a@example.com")
    assert listed(tmp_path)["a@example.com"].cooldowns == {}
