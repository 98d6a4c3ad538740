"""Configuration: one TOML file, then environment variables, then command-line flags.

Everything is validated at load by pydantic models (the retry policy by the engine's own
`Policy`); a bad value fails with the file, the key and the reason. Secrets (the API key, the
OAuth client secret) may come from the environment so that they stay out of files; `repr` of
the settings never shows them.

    [server]   host, port, api_key, allowed_hosts, body_limit_mb, state, ping_interval_s,
               client_retry_limit_s, record, record_max_mb, state_poll_s, idle_timeout_s,
               body_timeout_s, max_connections, workers, dashboard, event_loop, log_format
    [upstream] endpoints (name = base URL; every name in policy.endpoints needs one), token_url,
               connect_timeout_s, first_byte_timeout_s, idle_timeout_s, max_stream_s,
               max_reset_s, token_timeout_s, token_down_s (the token endpoint), client versions
    [oauth]    client_id, client_secret
    [models]   aliases (client model -> upstream model), opus / sonnet / haiku (family targets),
               ttl_s, startup_wait_s, fetch_timeout_s (the live model list)
    [quota]    refresh_s, jitter, concurrency, after_429_s, tier_refresh_s (reading each
               account's quota and tier)
    [state]    redis_url (several instances share one pool; env INTERLOCK_REDIS_URL)
    [policy]   preset = "default" | "many-accounts" | "conservative", then any Policy field
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from engine.policy import Policy, PolicyError, load_policy

DEFAULT_ENDPOINTS = {
    "daily": "https://daily-cloudcode-pa.googleapis.com",
    "prod": "https://cloudcode-pa.googleapis.com",
}
ENV_PREFIX = "INTERLOCK_"


class ConfigError(Exception):
    """Invalid configuration: the message names where (file, key) and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_key: SecretStr | None = None
    allowed_hosts: tuple[str, ...] = ()
    """Names clients may put in the `Host` header besides `localhost` and IP addresses (a guard
    against DNS rebinding, `adapters.web_guard`); `"*"` accepts any."""
    body_limit_mb: float = Field(50, gt=0, le=1024)
    state: str | None = None
    ping_interval_s: float = Field(15, gt=0, le=600)
    client_retry_limit_s: float = Field(60, ge=0, le=86_400)
    """A 429 whose reset is further away than this tells clients not to retry
    (`x-should-retry: false`); the real reset stays in `retry-after` and the message."""
    record: str | None = None
    record_max_mb: float = Field(256, gt=0, le=100_000)
    state_poll_s: float = Field(0.5, gt=0, le=1.5)
    """How often the state database is checked for `interlock accounts` changes (they take
    effect within this plus a read: under 2 s)."""
    idle_timeout_s: float = Field(75, gt=0, le=3600)
    """A client connection without a complete request head this long after it opened or after
    its last answer is closed: idle keep-alive connections and trickled headers alike (longer
    than clients keep idle connections, and than a reverse proxy's 60 s, so interlock is never
    the side that closes a connection a client is about to reuse). Answers are never cut."""
    body_timeout_s: float = Field(120, gt=0, le=3600)
    """A request body must arrive within this of its head (else 408, connection closed)."""
    max_connections: int = Field(256, ge=1, le=100_000)
    """Client connections served at once; more are answered 503 overloaded_error and closed."""
    workers: int = Field(1, ge=1, le=64)
    """Processes serving the port (`SO_REUSEPORT`); see `adapters.workers`."""
    dashboard: bool = True
    """Serve the dashboard (`/dashboard`) and keep its live view of requests."""
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    """`interlock serve`'s event loop: `auto` takes uvloop when it is installed (3-5 % less CPU
    per request in bench/hotpath_bench.py), else asyncio's; `uvloop` requires it."""
    log_format: Literal["text", "json"] = "text"
    """`json`: every log line is one JSON object (a request's line holds its fields as keys)."""

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if not host or any(c in host for c in ":/[] "):
                raise ValueError(f"{host!r}: give a bare host name, without scheme or port")
        return tuple(host.lower().rstrip(".") for host in hosts)


class UpstreamSettings(_Section):
    endpoints: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ENDPOINTS))
    token_url: str = "https://oauth2.googleapis.com/token"
    connect_timeout_s: float = Field(10, gt=0, le=300)
    first_byte_timeout_s: float = Field(120, gt=0, le=3600)
    idle_timeout_s: float = Field(90, gt=0, le=3600)
    """An answer that sends nothing for this long (between chunks) is cut off."""
    max_stream_s: float = Field(1800, gt=0, le=86_400)
    """The longest one upstream answer may stream, from its status line; a longer one is cut
    off (after commit: one SSE error event). The policy's `deadline_ms` bounds only the time
    before the first content; this bounds the rest."""
    max_reset_s: float = Field(86_400, gt=0, le=30 * 86_400)
    """A reset the upstream states is trusted up to this long (a day); longer ones are capped,
    with a log line (`interlock accounts clear-cooldowns` forgets one early)."""
    token_timeout_s: float = Field(10, gt=0, le=120)
    """One call of the OAuth token endpoint (connect included) may take this long."""
    token_down_s: float = Field(30, ge=0, le=600)
    """After the token endpoint timed out, refreshes fail at once for this long (cached access
    tokens still serve), so that one request does not wait a timeout per account; 0: never."""
    user_agent_version: str = "2.0.3"
    client_version: str = "1.110.0"

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, endpoints: dict[str, str]) -> dict[str, str]:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        for name, url in endpoints.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{name}: {url!r} is not an http(s) URL")
        return {name: url.rstrip("/") for name, url in endpoints.items()}


class OAuthSettings(_Section):
    client_id: str | None = None
    client_secret: SecretStr | None = None


class ModelSettings(_Section):
    """How client model names map to upstream models (see `adapters.models.resolve`)."""

    aliases: dict[str, str] = Field(default_factory=dict)
    opus: str | None = None  # the model for any *opus* name (default: the best available opus)
    sonnet: str | None = None  # likewise for *sonnet*
    haiku: str | None = None  # likewise for *haiku* (default: the best gemini-*-flash*)
    ttl_s: float = Field(300, gt=0, le=86_400)  # how long a fetched model list is fresh
    startup_wait_s: float = Field(3, ge=0, le=60)  # a request waits this long for the first list
    fetch_timeout_s: float = Field(10, gt=0, le=300)  # one fetchAvailableModels call

    @field_validator("aliases")
    @classmethod
    def _targets(cls, aliases: dict[str, str]) -> dict[str, str]:
        for name, target in aliases.items():
            if not name.strip() or not target.strip():
                raise ValueError(f"{name!r} = {target!r}: names must not be empty")
        return aliases


class QuotaSettings(_Section):
    """Reading each account's remaining quota per model (fetchAvailableModels) and its tier
    (loadCodeAssist), see `adapters.quota`."""

    refresh_s: float = Field(150, ge=10, le=86_400)
    """Every account's quota is read at start and then about this often (kept well under the
    hybrid strategy's `policy.quota.stale_ms`, 300 s by default, after which it ignores a
    reading)."""
    jitter: float = Field(0.1, ge=0, le=0.5)
    """Each wait is `refresh_s` times a random factor in [1 - jitter, 1 + jitter]."""
    concurrency: int = Field(4, ge=1, le=64)
    """Accounts read at once."""
    after_429_s: float = Field(5, ge=0, le=3600)
    """After a quota 429 the account is read again, at most once per this many seconds."""
    tier_refresh_s: float = Field(3600, ge=60, le=7 * 86_400)
    """The subscription tier changes rarely: it is read at most this often."""
    enabled: bool = True


class StateSettings(_Section):
    """Shared state between instances (`adapters.shared`)."""

    redis_url: SecretStr | None = None
    """`redis://host:port/db`: share the pool's cooldowns, enabled flags and invalid marks with
    every instance on the same Redis. Unset: one process, nothing shared. A secret (it may hold
    a password): never shown."""

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("give a redis://, rediss:// or unix:// URL")
        return url


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    oauth: OAuthSettings = OAuthSettings()
    models: ModelSettings = ModelSettings()
    quota: QuotaSettings = QuotaSettings()
    state: StateSettings = StateSettings()
    policy: Policy = Policy(endpoints=tuple(DEFAULT_ENDPOINTS))


#: Environment variables and the keys they set.
ENVIRONMENT = {
    "INTERLOCK_HOST": ("server", "host"),
    "INTERLOCK_PORT": ("server", "port"),
    "INTERLOCK_API_KEY": ("server", "api_key"),
    "INTERLOCK_STATE": ("server", "state"),
    "INTERLOCK_REDIS_URL": ("state", "redis_url"),
    "INTERLOCK_OAUTH_CLIENT_ID": ("oauth", "client_id"),
    "INTERLOCK_OAUTH_CLIENT_SECRET": ("oauth", "client_secret"),
}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """File, then environment, then `overrides` ({"server": {"port": 9000}} from flags)."""
    where = str(path) if path else "configuration"
    data: dict[str, Any] = _read_toml(path) if path else {}
    for var, (section, key) in ENVIRONMENT.items():
        value = (os.environ if env is None else env).get(var)
        if value:
            data.setdefault(section, {})[key] = value
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    policy_data = dict(data.pop("policy", {}) or {})
    if "endpoints" not in policy_data:  # the policy tries the configured endpoints, in order
        upstream = data.get("upstream") or {}
        configured = upstream.get("endpoints") if isinstance(upstream, dict) else None
        names = configured if isinstance(configured, dict) and configured else DEFAULT_ENDPOINTS
        policy_data["endpoints"] = list(names)
    try:
        policy = load_policy(str(policy_data.pop("preset", "default")), policy_data)
    except PolicyError as err:
        problems = "; ".join(f"policy.{field}: {why}" for field, why in err.problems)
        raise ConfigError(f"{where}: {problems}") from None
    try:
        settings = Settings.model_validate({**data, "policy": policy})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
    _check_endpoints(settings, where)
    _check_quota(settings, where)
    return settings


def _check_quota(settings: Settings, where: str) -> None:
    """A quota reading must still be fresh for the strategy when the next one comes."""
    quota, stale_s = settings.quota, settings.policy.quota.stale_ms / 1000
    longest = quota.refresh_s * (1 + quota.jitter)
    if quota.enabled and longest >= stale_s:
        raise ConfigError(
            f"{where}: quota.refresh_s = {quota.refresh_s:g} (up to {longest:g} s with its "
            f"jitter) is not shorter than policy.quota.stale_ms = "
            f"{settings.policy.quota.stale_ms} ({stale_s:g} s): the strategy would ignore each "
            "quota reading before the next one comes; lower refresh_s or raise stale_ms"
        )


def _check_endpoints(settings: Settings, where: str) -> None:
    """Every endpoint the policy tries needs a URL in [upstream] endpoints (else every attempt
    to it would fail as unreachable); [upstream] may define more than the policy uses."""
    named, defined = settings.policy.endpoints, list(settings.upstream.endpoints)
    missing = [name for name in named if name not in defined]
    if missing:
        raise ConfigError(
            f"{where}: policy.endpoints ({', '.join(named)}) and [upstream] endpoints "
            f"({', '.join(defined)}) disagree: no URL for {', '.join(missing)}; define it in "
            "[upstream] endpoints or drop it from policy.endpoints"
        )
