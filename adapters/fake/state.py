"""The fake upstream's state: accounts, tokens, scripts and the request log (no I/O here)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import secrets
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from adapters.fake.answers import SIMPLE_KINDS, Answer, normal, stream

Call = Literal["generate", "loadCodeAssist", "onboardUser", "fetchAvailableModels", "token"]
CALLS: tuple[str, ...] = get_args(Call)
GENERATE_PATHS = ("streamGenerateContent", "generateContent")
BOOTSTRAP_PATHS = ("loadCodeAssist", "onboardUser", "fetchAvailableModels")

DEFAULT_MODEL_NAMES: tuple[tuple[str, str], ...] = (
    ("claude-opus-4-6-thinking", "Claude Opus 4.6 (Thinking)"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6"),
    ("claude-sonnet-4-6-thinking", "Claude Sonnet 4.6 (Thinking)"),
    ("gemini-3-flash", "Gemini 3 Flash"),
    ("gemini-3.1-pro-low", "Gemini 3.1 Pro (Low)"),
    ("gemini-3.1-pro-high", "Gemini 3.1 Pro (High)"),
    ("gemini-3.5-flash-low", "Gemini 3.5 Flash (Low)"),
)


def iso_in(seconds: float) -> str:
    """An RFC 3339 UTC timestamp `seconds` from now, as Google writes them."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def default_models() -> dict[str, dict[str, Any]]:
    """The fetchAvailableModels list of seed-behaviour §4.9, every quota full."""
    reset = iso_in(5 * 3600)
    return {
        model: {"displayName": name, "quotaInfo": {"remainingFraction": 1.0, "resetTime": reset}}
        for model, name in DEFAULT_MODEL_NAMES
    }


@dataclass
class Account:
    """One fake Google account. `project` is what loadCodeAssist reports once `onboarded`;
    onboardUser answers `{"done": false}` `onboard_polls` times before it completes."""

    name: str
    email: str
    refresh_token: str
    project: str
    tier: str = "standard-tier"
    paid_tier: str | None = None
    onboarded: bool = True
    onboard_polls: int = 1
    revoked: bool = False
    models: dict[str, dict[str, Any]] | None = None


@dataclass
class RequestRecord:
    """One request the fake received. `time` is `time.monotonic()` on arrival, `finished` when
    the handler ended (also when the client went away); `call` is the Cloud Code method name
    (`streamGenerateContent`, ...), "token", "userinfo" or "unknown"; `headers` are lower-cased
    with the Authorization value redacted; `outcome` is the served answer's label ("stream",
    "preset:quota_429", "drop_after", "ok", "grant", "invalid_grant", "unauthenticated", ...);
    `status` the HTTP status sent (None when no response was sent); `scripted` is False for the
    default answer."""

    seq: int
    time: float
    endpoint: str
    method: str
    path: str
    query: str
    call: str
    account: str | None
    model: str | None
    body: Any
    headers: dict[str, str]
    outcome: str = ""
    status: int | None = None
    scripted: bool = False
    finished: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Code:
    account: str
    challenge: str | None = None


class FakeState:
    """Accounts, tokens, scripts and log of one fake upstream; `FakeUpstream` adds the servers.

    All methods are synchronous and may be called at any time, also while requests are served
    (everything runs on one event loop)."""

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        check_project: bool = False,
        default: Answer | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.check_project = check_project
        self._default = default or stream()
        self._accounts: dict[str, Account] = {}
        self._access: dict[str, str] = {}
        self._codes: dict[str, _Code] = {}
        self._queues: dict[tuple[str | None, str | None, str], deque[Answer]] = {}
        self._models = default_models()
        self._log: list[RequestRecord] = []
        self._seq = itertools.count(1)
        self._closing: asyncio.Event | None = None

    # accounts and tokens ------------------------------------------------------------------

    def add_account(
        self,
        name: str,
        *,
        refresh_token: str | None = None,
        project: str | None = None,
        tier: str = "standard-tier",
        paid_tier: str | None = None,
        onboarded: bool = True,
        onboard_polls: int = 1,
        email: str | None = None,
    ) -> Account:
        """Register an account. The refresh token defaults to a random opaque string; the
        project to a random id. `onboarded=False` makes loadCodeAssist report no project until
        onboardUser has completed (after `onboard_polls` `{"done": false}` answers)."""
        if name in self._accounts:
            raise ValueError(f"account {name!r} exists already")
        token = refresh_token or "1//fake-" + secrets.token_urlsafe(32)
        if any(a.refresh_token == token for a in self._accounts.values()):
            raise ValueError("another account has this refresh token")
        account = Account(
            name=name,
            email=email or (name if "@" in name else f"{name}@example.com"),
            refresh_token=token,
            project=project or "fake-project-" + secrets.token_hex(4),
            tier=tier,
            paid_tier=paid_tier,
            onboarded=onboarded,
            onboard_polls=onboard_polls,
        )
        self._accounts[name] = account
        return account

    def account(self, name: str) -> Account:
        try:
            return self._accounts[name]
        except KeyError:
            known = ", ".join(self._accounts) or "none"
            raise KeyError(f"unknown account {name!r} (known: {known})") from None

    @property
    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    def access_token(self, name: str) -> str:
        """Issue a new opaque access token for the account (as the token endpoint does)."""
        self.account(name)
        token = "ya29.fake-" + secrets.token_urlsafe(32)
        self._access[token] = name
        return token

    def expire_access_tokens(self, name: str) -> int:
        """Forget every access token of the account (requests with them get 401)."""
        stale = [t for t, owner in self._access.items() if owner == name]
        for token in stale:
            del self._access[token]
        return len(stale)

    def revoke(self, name: str, revoked: bool = True) -> None:
        """Make the account's refresh token answer invalid_grant (or undo that)."""
        self.account(name).revoked = revoked

    def authorization_code(self, name: str, *, code_challenge: str | None = None) -> str:
        """A one-time code the token endpoint exchanges (grant_type=authorization_code) for
        the account's tokens; with `code_challenge` the code_verifier must match it (S256)."""
        self.account(name)
        code = "4/fake-" + secrets.token_urlsafe(24)
        self._codes[code] = _Code(name, code_challenge)
        return code

    def account_for_access(self, token: str | None) -> Account | None:
        name = self._access.get(token or "")
        return None if name is None else self._accounts.get(name)

    def account_for_refresh(self, token: str | None) -> Account | None:
        for account in self._accounts.values():
            if token and account.refresh_token == token:
                return account
        return None

    def code_account(self, code: str | None) -> Account | None:
        entry = self._codes.get(code or "")
        return None if entry is None else self._accounts.get(entry.account)

    def redeem_code(self, code: str, verifier: str) -> Account | None:
        """The code's account if `verifier` fits its challenge; the code is used up either way."""
        entry = self._codes.pop(code, None)
        if entry is None:
            return None
        if entry.challenge is not None:
            digest = hashlib.sha256(verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != entry.challenge:
                return None
        return self._accounts.get(entry.account)

    # scripts ----------------------------------------------------------------------------

    def script(
        self,
        account: str | None,
        answers: Sequence[Answer],
        *,
        endpoint: str | None = None,
        call: Call = "generate",
    ) -> None:
        """Queue answers for the account's next requests (account None: any account), only on
        `endpoint` if given. A request takes the first answer of, in this order: (account,
        endpoint), (account, any endpoint), (any account, endpoint), (any, any); else the
        default. `call` scripts generate (both generate paths), a bootstrap call or the token
        endpoint ("token"); those accept only `normal`, `error`/`preset`, `drop_before` and
        `hang()` answers."""
        if call not in CALLS:
            raise ValueError(f"unknown call {call!r}; known: {', '.join(CALLS)}")
        if account is not None:
            self.account(account)
        for answer in answers:
            if call != "generate" and (
                answer.kind not in SIMPLE_KINDS or answer.hang_after is not None
            ):
                raise ValueError(f"a {answer.label} answer cannot be scripted for {call}")
        key = (account, endpoint, str(call))
        self._queues.setdefault(key, deque()).extend(answers)

    def script_token(self, account: str | None, answers: Sequence[Answer]) -> None:
        """Queue token-endpoint answers for the account's grants (None: any grant), e.g.
        `preset("invalid_grant")`, `error(503)`, `drop_before()`, `normal()`."""
        self.script(account, answers, call="token")

    def pending(
        self, account: str | None = None, *, endpoint: str | None = None, call: Call = "generate"
    ) -> int:
        """How many answers are queued under exactly this key."""
        return len(self._queues.get((account, endpoint, str(call)), ()))

    def clear_scripts(self) -> None:
        self._queues.clear()

    @property
    def default(self) -> Answer:
        return self._default

    def set_default(self, answer: Answer) -> None:
        """The answer to unscripted generate requests (initially a short text stream)."""
        if answer.kind == "normal":
            raise ValueError("the default answer cannot be normal()")
        self._default = answer

    def take(self, account: str | None, endpoint: str, call: str) -> tuple[Answer, bool]:
        """The next answer for a request, and whether it was scripted."""
        keys = [(account, endpoint), (account, None), (None, endpoint), (None, None)]
        for acct, ep in keys if account is not None else keys[2:]:
            queue = self._queues.get((acct, ep, call))
            if queue:
                answer = queue.popleft()
                if answer.kind == "normal" and call == "generate":
                    return self._default, True
                return answer, True
        if call == "generate":
            return self._default, False
        return normal(), False

    # models -----------------------------------------------------------------------------

    def set_models(
        self, models: Mapping[str, Mapping[str, Any]], *, account: str | None = None
    ) -> None:
        """Replace the fetchAvailableModels list (model id -> {"displayName", "quotaInfo"}),
        for every account or for one."""
        copied = {k: dict(v) for k, v in models.items()}
        if account is None:
            self._models = copied
        else:
            self.account(account).models = copied

    def set_quota(
        self,
        model: str,
        remaining_fraction: float | None,
        *,
        reset_time: str | None = None,
        account: str | None = None,
    ) -> None:
        """Set one model's quotaInfo (None fraction: omitted, which means exhausted when a
        reset time is given), for every account or for one."""
        models = self.models_for(account)
        entry = dict(models.get(model, {"displayName": model}))
        quota: dict[str, Any] = {}
        if remaining_fraction is not None:
            quota["remainingFraction"] = remaining_fraction
        if reset_time is not None:
            quota["resetTime"] = reset_time
        entry["quotaInfo"] = quota
        models[model] = entry
        self.set_models(models, account=account)

    def exhausted(self, account: str, model: str) -> bool:
        """Whether the account's quota for the model is reported spent (fraction 0, or no
        fraction with a reset time)."""
        quota = self.models_for(account).get(model, {}).get("quotaInfo") or {}
        fraction = quota.get("remainingFraction")
        if fraction is None:
            return "resetTime" in quota
        return bool(fraction <= 0)

    def models_for(self, account: str | None) -> dict[str, dict[str, Any]]:
        own = None if account is None else self.account(account).models
        return {k: dict(v) for k, v in (self._models if own is None else own).items()}

    async def wait_closing(self) -> None:
        """Return when the fake is stopping (hanging answers wait on this)."""
        if self._closing is None:
            self._closing = asyncio.Event()
        await self._closing.wait()

    # log --------------------------------------------------------------------------------

    def record(
        self,
        *,
        endpoint: str,
        method: str,
        path: str,
        query: str,
        call: str,
        account: str | None,
        model: str | None,
        body: Any,
        headers: Mapping[str, str],
    ) -> RequestRecord:
        """Append a request to the log (the HTTP handlers call this)."""
        clean = {
            k.lower(): ("<redacted>" if k.lower() == "authorization" else v)
            for k, v in headers.items()
        }
        entry = RequestRecord(
            seq=next(self._seq),
            time=time.monotonic(),
            endpoint=endpoint,
            method=method,
            path=path,
            query=query,
            call=call,
            account=account,
            model=model,
            body=body,
            headers=clean,
        )
        self._log.append(entry)
        return entry

    @property
    def log(self) -> list[RequestRecord]:
        return list(self._log)

    def requests(
        self,
        account: str | None = None,
        path: str | None = None,
        *,
        endpoint: str | None = None,
        call: str | None = None,
    ) -> list[RequestRecord]:
        """Logged requests in arrival order, filtered: `path` matches the request path exactly
        or its method name (e.g. "streamGenerateContent", "/token")."""
        return [
            r
            for r in self._log
            if (account is None or r.account == account)
            and (path is None or path in (r.path, r.call))
            and (endpoint is None or r.endpoint == endpoint)
            and (call is None or r.call == call)
        ]

    def clear_log(self) -> None:
        self._log.clear()

    async def wait_for_requests(
        self,
        count: int,
        *,
        timeout: float = 5.0,
        account: str | None = None,
        path: str | None = None,
        endpoint: str | None = None,
    ) -> list[RequestRecord]:
        """Wait until at least `count` matching requests are logged; TimeoutError after
        `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                found = self.requests(account, path, endpoint=endpoint)
                if len(found) >= count:
                    return found
                await asyncio.sleep(0.005)
