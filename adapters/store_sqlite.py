"""The SQLite state store: accounts, their credentials, cooldowns, invalid reasons, across restarts.

Implements the engine's `StateStore` port with narrow writes: a cooldown write only ever extends
the stored one (max-merge in SQL), an invalid mark or an enabled flag changes that column alone,
and nothing is written for an account removed meanwhile, so changes made by `interlock accounts`
while the proxy runs are never overwritten. Cooldowns are stored as wall-clock times and turned
back into the caller's monotonic time on load, so a restart keeps them. The database file is
created with mode 0600 before SQLite opens it (SQLite gives its WAL and shared-memory files the
same mode); WAL journaling lets `interlock accounts list` read while the proxy writes. Every
write is one transaction. Credentials live in their own table and never leave this module
except through `credentials()`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.store import AccountRecord, CooldownRecord

if sys.platform != "win32":
    import fcntl

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT 'oauth',
    enabled INTEGER NOT NULL DEFAULT 1,
    invalid_reason TEXT,
    verify_url TEXT,
    quota_threshold REAL,
    model_quota_thresholds TEXT NOT NULL DEFAULT '{}',
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    refresh_token TEXT,
    api_key TEXT,
    project_id TEXT,
    managed_project_id TEXT
);
CREATE TABLE IF NOT EXISTS cooldowns (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    until_wall REAL NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (account_id, model)
);
CREATE TABLE IF NOT EXISTS quota (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    remaining_fraction REAL,
    reset_time TEXT,
    read_at REAL NOT NULL,
    PRIMARY KEY (account_id, model)
);
CREATE TABLE IF NOT EXISTS tiers (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    tier TEXT NOT NULL,
    tier_id TEXT,
    read_at REAL NOT NULL
);
PRAGMA user_version = 1;
"""


class StoreError(Exception):
    """The state database cannot be opened or read; the message says which file and why."""


class StateInUse(StoreError):
    """Another `interlock serve` holds the state database's lock."""


class StateLock:
    """`interlock serve`'s claim on a state database: an exclusive `flock` on `<state>.lock`
    (holding the holder's pid, for the message), taken without waiting and released when the
    process exits, however it exits. Two proxies on one database would each write the cooldowns
    and invalid marks they learned and reload the other's as outside changes, so one refuses to
    start. `interlock accounts` never takes it: it is meant to run next to the proxy."""

    def __init__(self, state: Path | str) -> None:
        self.state = Path(state)
        self.path = self.state.with_name(self.state.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.state.is_dir():
            raise StoreError(f"{self.state}: is a directory, not a state database file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise StoreError(f"{self.path}: cannot open the lock file ({err.strerror})") from None
        if sys.platform == "win32":  # no flock: Windows runs without the guard
            self._fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateInUse(
                f"{self.state} is already used by another `interlock serve` (pid {holder}); "
                "stop it, or give this one its own --state"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the lock

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class Credentials:
    """Secrets of one account. `repr` never shows them."""

    refresh_token: str | None = None
    api_key: str | None = None
    project_id: str | None = None
    managed_project_id: str | None = None

    def __repr__(self) -> str:
        kind = "refresh token" if self.refresh_token else "api key" if self.api_key else "none"
        return f"Credentials({kind}, project={self.project_id!r})"


@dataclass(frozen=True)
class AccountInfo:
    """What `accounts list` shows: never a secret."""

    id: str
    email: str
    source: str
    enabled: bool
    invalid_reason: str | None
    verify_url: str | None
    cooldowns: dict[str, tuple[float, str]]  # model -> (until, wall clock s; reason)
    added_at: float
    tier: str | None = None  # "ultra", "pro", "free", "unknown"; None: never read
    quota: dict[str, QuotaRow] = field(default_factory=dict)  # model -> the last reading


@dataclass(frozen=True)
class QuotaRow:
    """One account x model's quota as last read (`remaining_fraction` None: not reported)."""

    remaining_fraction: float | None
    reset_time: str | None  # RFC 3339, as the upstream wrote it
    read_at: float  # wall clock s


def default_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "interlock" / "state.db"


class SQLiteStore:
    """The durable `StateStore`. `wall` is the wall clock (injectable for tests); `busy_s` is
    how long a write waits for another connection's write lock before it fails. With
    `any_thread`, the connection may be used from a worker thread (one at a time)."""

    def __init__(
        self,
        path: Path | str,
        *,
        wall: Callable[[], float] = time.time,
        readonly: bool = False,
        busy_s: float = 5.0,
        any_thread: bool = False,
    ) -> None:
        self.path = Path(path)
        self._wall = wall
        self._readonly = readonly
        self._busy_s = busy_s
        self._any_thread = any_thread
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        if self.path.is_dir():  # checked first: never chmod a directory given by mistake
            raise StoreError(f"{self.path}: is a directory, not a state database file")
        try:
            if self._readonly:
                if not self.path.exists():
                    raise StoreError(f"{self.path}: no state database (nothing added yet)")
                db = sqlite3.connect(
                    f"file:{self.path}?mode=ro",
                    uri=True,
                    timeout=self._busy_s,
                    check_same_thread=not self._any_thread,
                )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                if not self.path.exists():
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
                os.chmod(self.path, 0o600)
                db = sqlite3.connect(
                    self.path,
                    timeout=self._busy_s,
                    isolation_level=None,
                    check_same_thread=not self._any_thread,
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA foreign_keys=ON")
                db.executescript(SCHEMA)
            db.execute("SELECT count(*) FROM accounts").fetchone()
            return db
        except sqlite3.DatabaseError as err:
            raise StoreError(
                f"{self.path}: not a readable interlock state database ({err})"
            ) from None
        except OSError as err:
            raise StoreError(f"{self.path}: cannot open ({err.strerror})") from None

    def close(self) -> None:
        self._db.close()

    def data_version(self) -> int:
        """Changes whenever another connection commits (SQLite's `PRAGMA data_version`): a
        cheap way to notice `interlock accounts ...` while the proxy runs."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # the engine's StateStore port -----------------------------------------------------------
    def load(self, now: float) -> list[AccountRecord]:
        wall = self._wall()
        cooldowns: dict[str, dict[str, CooldownRecord]] = {}
        for account_id, model, until_wall, reason in self._db.execute(
            "SELECT account_id, model, until_wall, reason FROM cooldowns"
        ):
            if until_wall > wall:
                cooldowns.setdefault(account_id, {})[model] = CooldownRecord(
                    until=now + (until_wall - wall), reason=reason
                )
        return [
            AccountRecord(
                id=row[0],
                enabled=bool(row[1]),
                invalid_reason=row[2],
                verify_url=row[3],
                quota_threshold=row[4],
                model_quota_thresholds=json.loads(row[5]),
                cooldowns=cooldowns.get(row[0], {}),
            )
            for row in self._db.execute(
                "SELECT id, enabled, invalid_reason, verify_url, quota_threshold, "
                "model_quota_thresholds FROM accounts ORDER BY added_at, id"
            )
        ]

    def save_cooldown(
        self, account_id: str, model: str, until: float, reason: str, now: float
    ) -> None:
        self.save_cooldown_wall(account_id, model, self._wall() + (until - now), reason)

    def save_cooldown_wall(
        self, account_id: str, model: str, until_wall: float, reason: str
    ) -> None:
        """Extend the cooldown of account x model to wall-clock `until_wall` (max-merge in SQL:
        an earlier end changes nothing). Nothing is written for an account removed meanwhile."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO cooldowns (account_id, model, until_wall, reason) "
                "SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id=?) "
                "ON CONFLICT (account_id, model) DO UPDATE SET "
                "until_wall=excluded.until_wall, reason=excluded.reason "
                "WHERE excluded.until_wall > cooldowns.until_wall",
                (account_id, model, until_wall, reason, account_id),
            )

    def save_invalid(self, account_id: str, reason: str | None, verify_url: str | None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE accounts SET invalid_reason=?, verify_url=? WHERE id=?",
                (reason, None if reason is None else verify_url, account_id),
            )

    def save_enabled(self, account_id: str, enabled: bool) -> None:
        self.set_enabled(account_id, enabled)

    def remove_account(self, account_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM accounts WHERE id=?", (account_id,))

    def save_quota(
        self, account_id: str, rows: dict[str, QuotaRow], tier: tuple[str, str | None] | None
    ) -> None:
        """Replace the account's last quota reading (and tier, when read); nothing for an
        account that is not stored (removed meanwhile)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM accounts WHERE id=?", (account_id,)).fetchone() is None:
                return
            db.execute("DELETE FROM quota WHERE account_id=?", (account_id,))
            db.executemany(
                "INSERT INTO quota VALUES (?, ?, ?, ?, ?)",
                [
                    (account_id, model, r.remaining_fraction, r.reset_time, r.read_at)
                    for model, r in rows.items()
                ],
            )
            if tier is not None:
                read_at = max((r.read_at for r in rows.values()), default=self._wall())
                db.execute(
                    "INSERT OR REPLACE INTO tiers VALUES (?, ?, ?, ?)",
                    (account_id, tier[0], tier[1], read_at),
                )

    def clear_cooldown(self, account_id: str, model: str) -> None:
        self.clear_cooldowns(account_id, model)

    def clear_cooldowns(self, account_id: str, model: str | None = None) -> int:
        """Forget the account's cooldowns (every model's, or `model`'s): a person's decision,
        so a running proxy clears them too. Returns how many there were."""
        with self._transaction() as db:
            if model is None:
                cursor = db.execute("DELETE FROM cooldowns WHERE account_id=?", (account_id,))
            else:
                cursor = db.execute(
                    "DELETE FROM cooldowns WHERE account_id=? AND model=?", (account_id, model)
                )
            return int(cursor.rowcount)

    # account management (the CLI and the adapters) ------------------------------------------
    def add_account(
        self,
        email: str,
        credentials: Credentials,
        *,
        source: str = "oauth",
        enabled: bool = True,
        invalid_reason: str | None = None,
        verify_url: str | None = None,
        cooldowns: dict[str, tuple[float, str]] | None = None,
    ) -> str | None:
        """Add an account; returns its new id, or None if an account with `email` exists
        (nothing is overwritten)."""
        account_id = "acct-" + os.urandom(4).hex()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM accounts WHERE email=?", (email,)).fetchone():
                return None
            db.execute(
                "INSERT INTO accounts (id, email, source, enabled, invalid_reason, verify_url, "
                "added_at) VALUES (?,?,?,?,?,?,?)",
                (account_id, email, source, int(enabled), invalid_reason, verify_url, self._wall()),
            )
            db.execute(
                "INSERT INTO credentials (account_id, refresh_token, api_key, project_id, "
                "managed_project_id) VALUES (?,?,?,?,?)",
                (
                    account_id,
                    credentials.refresh_token,
                    credentials.api_key,
                    credentials.project_id,
                    credentials.managed_project_id,
                ),
            )
            db.executemany(
                "INSERT INTO cooldowns (account_id, model, until_wall, reason) VALUES (?,?,?,?)",
                [
                    (account_id, m, until, reason)
                    for m, (until, reason) in (cooldowns or {}).items()
                ],
            )
        return account_id

    def find(self, id_or_email: str) -> str | None:
        row = self._db.execute(
            "SELECT id FROM accounts WHERE id=? OR email=?", (id_or_email, id_or_email)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_enabled(self, account_id: str, enabled: bool) -> None:
        with self._transaction() as db:
            db.execute("UPDATE accounts SET enabled=? WHERE id=?", (int(enabled), account_id))

    def clear_invalid(self, account_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE accounts SET invalid_reason=NULL, verify_url=NULL WHERE id=?",
                (account_id,),
            )

    def credentials(self, account_id: str) -> Credentials:
        row = self._db.execute(
            "SELECT refresh_token, api_key, project_id, managed_project_id FROM credentials "
            "WHERE account_id=?",
            (account_id,),
        ).fetchone()
        return Credentials() if row is None else Credentials(*row)

    def set_managed_project(self, account_id: str, project: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE credentials SET managed_project_id=? WHERE account_id=?",
                (project, account_id),
            )

    def _rows(self, query: str) -> list[Any]:
        """The rows of a table added after version 1's first release (none in an older
        database opened read-only, where the table does not exist yet)."""
        try:
            return self._db.execute(query).fetchall()
        except sqlite3.OperationalError:
            return []

    def accounts(self) -> list[AccountInfo]:
        wall = self._wall()
        cooldowns: dict[str, dict[str, tuple[float, str]]] = {}
        for account_id, model, until_wall, reason in self._db.execute(
            "SELECT account_id, model, until_wall, reason FROM cooldowns ORDER BY model"
        ):
            if until_wall > wall:
                cooldowns.setdefault(account_id, {})[model] = (until_wall, reason)
        quota: dict[str, dict[str, QuotaRow]] = {}
        for account_id, model, fraction, reset, read_at in self._rows(
            "SELECT account_id, model, remaining_fraction, reset_time, read_at FROM quota "
            "ORDER BY model"
        ):
            quota.setdefault(account_id, {})[model] = QuotaRow(fraction, reset, read_at)
        tiers = dict(self._rows("SELECT account_id, tier FROM tiers"))
        return [
            AccountInfo(
                id=row[0],
                email=row[1],
                source=row[2],
                enabled=bool(row[3]),
                invalid_reason=row[4],
                verify_url=row[5],
                cooldowns=cooldowns.get(row[0], {}),
                added_at=row[6],
                tier=tiers.get(row[0]),
                quota=quota.get(row[0], {}),
            )
            for row in self._db.execute(
                "SELECT id, email, source, enabled, invalid_reason, verify_url, added_at "
                "FROM accounts ORDER BY added_at, id"
            )
        ]
