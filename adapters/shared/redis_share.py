"""Several interlock instances share one pool through Redis (`[state] redis_url`).

- **Out**: every local change of an account's cooldown, enabled flag or invalid mark (the
  pool's `StateStore` writes, through `SharedStore`), and every quota reading (`reading`),
  becomes an `Entry` (`merge`), queued and
  written behind the requests by one task: merged into the hash `interlock:pool` (optimistic
  `WATCH`/`MULTI`: only an entry that wins over the stored one is written) and published on
  `interlock:pool:changes`.
- **In**: every instance listens on that channel and applies what other instances published to
  its own pool with the same merge rule (cooldowns extend, the newest decision or reading
  wins), so that any order of the same entries leaves equal pools. A reading from another
  instance feeds the pool's quota (hybrid's quota term and floors). It lifts no rest: a rest
  only extends when shared, and a rest a reading ordered is lifted by each instance's own next
  reading that shows quota (`adapters.quota`). At start
  and after each reconnect it reads the whole hash first, so a late joiner starts from what the
  others learned.
- **Redis down**: requests never wait for Redis; the instance serves on its local state, logs
  the outage once, retries every `retry_s`, and when Redis is back reads the hash and writes
  every local entry newer than Redis's (nothing learned meanwhile is lost).
- Accounts are named by `account_key` (a hash of the email), the same on every instance even
  with separate state databases. No token, secret or email goes to Redis.

- **The 429 dedup window** is shared (`claim`, the runner's `DedupWindow`): the first 429 on
  an account x model claims `interlock:dedup:<account key>:<model>` with `SET NX PX` for the
  window; a 429 another request meets inside it, on any instance, is a duplicate and does not
  escalate. Redis unreachable or slower than `CLAIM_TIMEOUT_S`: the instance's own window
  decides.

Per instance, not shared: retry budgets and breakers (each instance measures its own network
path to the upstream), leases (requests in flight belong to one process), the strike counts a
non-duplicate 429 escalates (each instance's rests are shared, so the longest wins).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from adapters.shared.merge import COOLDOWN, QUOTA, Entry, Replica, wins
from engine.pool import AccountPool, UnknownAccount
from engine.runner.ports import Clock
from engine.store import AccountRecord, StateStore

log = logging.getLogger("interlock.shared")

HASH = "interlock:pool"
CHANNEL = "interlock:pool:changes"
DEDUP = "interlock:dedup:"
RETRY_S = 0.5
CLAIM_TIMEOUT_S = 0.1  # a 429 waits at most this for the shared window, then decides locally
MAX_CLAIMS = 8  # claims in flight at most; more (Redis stalling) decide locally at once


class RedisShare:
    """One instance's link to the shared pool. `keys()` maps local account ids to their
    shared keys (read again when an unknown key or id shows up). The pool is attached once it
    exists (its store, `SharedStore`, needs this object first)."""

    def __init__(
        self,
        url: str,
        keys: Callable[[], dict[str, str]],
        *,
        clock: Clock,
        instance: str | None = None,
        retry_s: float = RETRY_S,
    ) -> None:
        self.url = url
        self.pool: AccountPool | None = None
        self._keys_source = keys
        self._clock = clock
        self.instance = instance or secrets.token_hex(6)
        self.retry_s = retry_s
        self.replica = Replica()
        self._outbox: dict[str, Entry] = {}
        self._wake = asyncio.Event()
        self._applying = False
        self._keys: dict[str, str] = {}
        self._ids: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None  # while connected
        self._claims: set[asyncio.Task[bool | None]] = set()  # dedup claims still running
        self.connected = asyncio.Event()
        self.down: str | None = None  # the error while Redis is unreachable (said once)
        self.applied = 0  # remote entries applied to the pool

    # the names of accounts -----------------------------------------------------------------
    def _refresh_keys(self) -> None:
        self._keys = dict(self._keys_source())
        self._ids = {key: account for account, key in self._keys.items()}

    def key_of(self, account_id: str) -> str | None:
        if account_id not in self._keys:
            self._refresh_keys()
        return self._keys.get(account_id)

    def id_of(self, key: str) -> str | None:
        if key not in self._ids:
            self._refresh_keys()
        return self._ids.get(key)

    # local changes out ---------------------------------------------------------------------
    def local(
        self, account_id: str, field: str, value: dict[str, Any], at: float | None = None
    ) -> None:
        """The pool changed this (not while applying another instance's change), at wall
        time `at` (now when None)."""
        if self._applying:
            return
        key = self.key_of(account_id)
        if key is None:
            return
        entry = Entry(key, field, value, self._clock.wall() if at is None else at, self.instance)
        if self.replica.apply(entry):
            self._outbox[entry.slot] = entry
            self._wake.set()

    def reading(self, account_id: str, model: str, fraction: float, read_at: float) -> None:
        """This instance read `fraction` of the model's quota left at wall time `read_at`."""
        self.local(account_id, QUOTA + model, {"fraction": fraction}, read_at)

    # remote changes in ---------------------------------------------------------------------
    def apply(self, entry: Entry) -> bool:
        """Merge another instance's entry into the replica and the pool (no echo)."""
        if not self.replica.apply(entry):
            return False
        account = self.id_of(entry.account)
        if self.pool is None or account is None or account not in self.pool.account_ids:
            return True  # an account this instance does not serve: kept in the replica only
        now, wall = self._clock.now(), self._clock.wall()
        self._applying = True
        try:
            if entry.field.startswith(COOLDOWN):
                until = float(entry.value["until"])
                if until > wall:
                    model = entry.field.removeprefix(COOLDOWN)
                    why = str(entry.value.get("reason", "shared"))
                    self.pool.cool_down(account, model, now + (until - wall), why, now)
            elif entry.field.startswith(QUOTA):
                model = entry.field.removeprefix(QUOTA)
                fraction = float(entry.value["fraction"])
                self.pool.update_quota(account, model, fraction, now - max(0.0, wall - entry.at))
            elif entry.field == "enabled":
                self.pool.set_enabled(account, bool(entry.value["enabled"]), now)
            elif entry.field == "invalid":
                invalid = entry.value.get("reason")
                if invalid is None:
                    self.pool.clear_invalid(account, now)
                else:
                    url = entry.value.get("verify_url")
                    self.pool.mark_invalid(account, str(invalid), url, now)
        except UnknownAccount:
            pass
        finally:
            self._applying = False
        self.applied += 1
        return True

    @property
    def pending(self) -> int:
        """Local changes not yet written to Redis."""
        return len(self._outbox)

    # the shared 429 dedup window -----------------------------------------------------------
    async def claim(self, account: str, model: str, holder: str, ttl_ms: int) -> bool | None:
        """`DedupWindow.claim`: `SET NX PX` on the account x model's window, and read who
        holds it, in one transaction. The holder's own repeat claim renews the window, as the
        local window renews on a request's own repeated 429. No answer within
        `CLAIM_TIMEOUT_S` is None: the claim goes on in the background, the 429 does not wait
        for it (a task of its own, since redis-py may not stop a command when cancelled). At
        most `MAX_CLAIMS` run at once, so a stalled Redis cannot take every pooled connection
        from the writer; beyond that a claim is None at once."""
        client, key = self._client, self.key_of(account)
        if client is None or key is None or not self.connected.is_set():
            return None
        if len(self._claims) >= MAX_CLAIMS:  # Redis stalls: keep its connections for the rest
            return None
        name, value = f"{DEDUP}{key}:{model}", f"{self.instance}:{holder}"
        task = asyncio.ensure_future(_claim(client, name, value, ttl_ms))
        self._claims.add(task)
        task.add_done_callback(self._claims.discard)
        done, _ = await asyncio.wait({task}, timeout=CLAIM_TIMEOUT_S)
        if not done or task.cancelled():  # no answer in time, or the link closing
            return None
        return task.result()

    # running -------------------------------------------------------------------------------
    def start(self, pool: AccountPool) -> None:
        """Attach the pool and connect in the background."""
        self.pool = pool
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        task, self._task = self._task, None
        for running in [*self._claims, task]:  # claims first: a 429 may be waiting on one
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

    async def flushed(self) -> None:
        """Wait until every local change so far is in Redis (tests; bounded by the caller)."""
        while self._outbox:
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        while True:
            client = aioredis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
            try:
                await self._session(client)
            except (RedisError, OSError) as err:
                self.connected.clear()
                why = f"{type(err).__name__}: {err}"
                if self.down is None:
                    log.warning(
                        "Redis at %s is unreachable (%s): serving on local state; retrying "
                        "every %.1f s",
                        _redacted(self.url),
                        why,
                        self.retry_s,
                    )
                self.down = why
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            _checkpoint()
            await asyncio.sleep(self.retry_s)

    async def _session(self, client: Any) -> None:
        pubsub = client.pubsub()
        await pubsub.subscribe(CHANNEL)
        try:
            stored = await client.hgetall(HASH)
            _checkpoint()
            for slot, text in stored.items():
                self.apply(Entry.loads(_text(slot), _text(text)))
            # what this instance learned while Redis was away, or before it joined
            for entry in self.replica.entries.values():
                current = stored.get(entry.slot.encode())
                if current is None or wins(entry, Entry.loads(entry.slot, _text(current))):
                    self._outbox.setdefault(entry.slot, entry)
            if self.down is not None:
                log.info(
                    "Redis at %s is reachable again: shared state resynchronised",
                    _redacted(self.url),
                )
                self.down = None
            self.connected.set()
            self._client = client
            await _together(self._reader(pubsub), self._writer(client))
        finally:
            self._client = None
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _reader(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            _checkpoint()
            if message is None or message.get("type") != "message":
                continue
            slot, _, text = _text(message["data"]).partition("\n")
            entry = Entry.loads(slot, text)
            if entry.origin != self.instance:
                self.apply(entry)

    async def _writer(self, client: Any) -> None:
        while True:
            while self._outbox:
                slot, entry = next(iter(self._outbox.items()))
                await self._write(client, entry)
                _checkpoint()
                if self._outbox.get(slot) is entry:
                    del self._outbox[slot]
            self._wake.clear()
            if not self._outbox:
                await self._wake.wait()

    async def _write(self, client: Any, entry: Entry) -> None:
        async with client.pipeline(transaction=True) as pipe:
            while True:
                _checkpoint()
                try:
                    await pipe.watch(HASH)
                    current = await pipe.hget(HASH, entry.slot)
                    if current is not None and not wins(
                        entry, Entry.loads(entry.slot, _text(current))
                    ):
                        await pipe.reset()
                        return
                    pipe.multi()
                    pipe.hset(HASH, entry.slot, entry.dumps())
                    pipe.publish(CHANNEL, entry.slot + "\n" + entry.dumps())
                    await pipe.execute()
                    return
                except WatchError:
                    continue


class SharedStore:
    """The pool's `StateStore` with sharing: every write goes to the local store (the state
    database) and, for what is shared, to `RedisShare`."""

    def __init__(self, local: StateStore, share: RedisShare, wall: Callable[[], float]) -> None:
        self.local = local
        self.share = share
        self._wall = wall

    def load(self, now: float) -> list[AccountRecord]:
        return self.local.load(now)

    def save_cooldown(
        self, account_id: str, model: str, until: float, reason: str, now: float
    ) -> None:
        self.local.save_cooldown(account_id, model, until, reason, now)
        until_wall = self._wall() + (until - now)
        self.share.local(account_id, COOLDOWN + model, {"until": until_wall, "reason": reason})

    def clear_cooldown(self, account_id: str, model: str) -> None:
        self.local.clear_cooldown(account_id, model)  # a reading's own rest: not shared

    def save_invalid(self, account_id: str, reason: str | None, verify_url: str | None) -> None:
        self.local.save_invalid(account_id, reason, verify_url)
        self.share.local(account_id, "invalid", {"reason": reason, "verify_url": verify_url})

    def save_enabled(self, account_id: str, enabled: bool) -> None:
        self.local.save_enabled(account_id, enabled)
        self.share.local(account_id, "enabled", {"enabled": enabled})

    def remove_account(self, account_id: str) -> None:
        self.local.remove_account(account_id)


async def _claim(client: Any, name: str, value: str, ttl_ms: int) -> bool | None:
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(name, value, nx=True, px=ttl_ms)
            pipe.get(name)
            claimed, current = await pipe.execute()
        _checkpoint()
        if current is not None and _text(current) != value:
            return False
        if not claimed:
            await client.pexpire(name, ttl_ms)
    except asyncio.CancelledError:
        raise
    except Exception as err:  # Redis away, or the link closing: the local window decides
        log.debug("the shared dedup window did not answer: %s", type(err).__name__)
        return None
    return True


def _checkpoint() -> None:
    """Raise the cancellation redis-py may have swallowed: redis-py 8.1 can return from a
    command whose task was cancelled inside it, so every loop around commands asks here (else
    `close`, at every shutdown, could wait forever)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _together(*work: Coroutine[Any, Any, None]) -> None:
    """Run the coroutines until the first ends or fails (raised here); then the others are
    cancelled and awaited, so none outlives the session that started it."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redacted(url: str) -> str:
    """The URL without a password (`redis://:secret@host` -> `redis://***@host`)."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
