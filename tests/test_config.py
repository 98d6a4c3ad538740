"""Configuration loads from a TOML file, the environment and flags, and fails clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.cli import build_parser
from adapters.config import ENVIRONMENT, ConfigError, Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "interlock.toml"
    path.write_text(text)
    return path


def test_defaults_bind_loopback_and_use_the_daily_then_prod_endpoints() -> None:
    settings = load_settings(env={})
    assert settings.server.host == "127.0.0.1"
    assert list(settings.upstream.endpoints) == ["daily", "prod"]
    assert settings.policy.max_retries == 5


def test_file_then_environment_then_flags_each_win_over_the_previous(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nport = 9000\nhost = "127.0.0.2"\n'
        '[policy]\npreset = "conservative"\nmax_retries = 7\n',
    )
    settings = load_settings(
        path, env={"INTERLOCK_PORT": "9100"}, overrides={"server": {"port": 9200, "host": None}}
    )
    assert (settings.server.host, settings.server.port) == ("127.0.0.2", 9200)
    assert settings.policy.strategy == "sticky" and settings.policy.max_retries == 7


def test_secrets_from_the_environment_never_show_in_the_settings_repr() -> None:
    settings = load_settings(
        env={"INTERLOCK_API_KEY": "sk-SECRET", "INTERLOCK_OAUTH_CLIENT_SECRET": "cs-SECRET"}
    )
    assert settings.server.api_key and settings.server.api_key.get_secret_value() == "sk-SECRET"
    assert "SECRET" not in repr(settings) and "SECRET" not in str(settings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = 70000\n", "server.port: Input should be less than or equal to 65535"),
        ("[server]\nbogus = 1\n", "server.bogus: Extra inputs are not permitted"),
        ("[policy]\nmax_retries = 0\n", "policy.max_retries: Input should be greater than"),
        ('[policy]\npreset = "fast"\n', "policy.preset: unknown preset 'fast'"),
        ('[upstream]\nendpoints = { daily = "ftp://x" }\n', "is not an http(s) URL"),
        ("[server\nport = 1\n", "not valid TOML"),
        ("[models]\nttl_s = 0\n", "models.ttl_s: Input should be greater than 0"),
        ('[models]\naliases = { "x" = " " }\n', "models.aliases: 'x' = ' ': names must not"),
        ("[models]\nopus = 4\n", "models.opus: Input should be a valid string"),
    ],
)
def test_a_bad_file_fails_naming_the_file_the_key_and_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml", env={})


def test_the_models_section_sets_aliases_family_targets_and_the_live_lists_timing(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        '[models]\naliases = { fast = "gemini-3-flash" }\nhaiku = "gemini-3.1-pro-low"\n'
        "ttl_s = 60\nstartup_wait_s = 0\nfetch_timeout_s = 2.5\n",
    )
    models = load_settings(path, env={}).models
    assert models.aliases == {"fast": "gemini-3-flash"} and models.haiku == "gemini-3.1-pro-low"
    assert (models.opus, models.sonnet) == (None, None)
    assert (models.ttl_s, models.startup_wait_s, models.fetch_timeout_s) == (60, 0, 2.5)


def test_a_policy_endpoint_the_upstream_section_does_not_define_fails_naming_both_lists(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        '[upstream]\nendpoints = { daily = "https://d.example", edge = "https://e.example" }\n'
        '[policy]\nendpoints = ["daily", "prod"]\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert message.startswith(str(path))
    assert "policy.endpoints (daily, prod)" in message
    assert "[upstream] endpoints (daily, edge)" in message
    assert "no URL for prod" in message


def test_the_upstream_section_may_define_endpoints_the_policy_does_not_use(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '[policy]\nendpoints = ["prod"]\n')
    settings = load_settings(path, env={})
    assert settings.policy.endpoints == ("prod",)
    assert list(settings.upstream.endpoints) == ["daily", "prod"]


def test_serve_with_mismatched_endpoints_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, '[policy]\nendpoints = ["daily", "canary"]\n')
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "serve", "--config", str(path), "--port", "0"],
        env={**os.environ, "INTERLOCK_STATE": str(tmp_path / "state.db")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("interlock: ") and "no URL for canary" in result.stderr


def test_the_policy_tries_the_configured_endpoints_in_their_order_by_default() -> None:
    # the engine knows no provider's endpoint names: the Cloud Code configuration brings them
    assert load_settings(env={}).policy.endpoints == ("daily", "prod")
    settings = load_settings(
        env={}, overrides={"upstream": {"endpoints": {"b": "http://127.0.0.1:1", "a": "http://x"}}}
    )
    assert settings.policy.endpoints == ("b", "a")


def test_a_quota_refresh_slower_than_the_strategy_keeps_readings_fresh_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={}, overrides={"quota": {"refresh_s": 290}})
    message = str(caught.value)
    assert "quota.refresh_s = 290 (up to 319 s with its jitter)" in message
    assert "policy.quota.stale_ms = 300000" in message
    load_settings(env={}, overrides={"quota": {"refresh_s": 290, "enabled": False}})
    load_settings(env={}, overrides={"quota": {"refresh_s": 290, "jitter": 0}})


def test_quota_settings_are_validated_with_the_key_named() -> None:
    with pytest.raises(ConfigError, match=r"quota\.concurrency"):
        load_settings(env={}, overrides={"quota": {"concurrency": 0}})


def test_serve_help_names_every_configuration_section_and_environment_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for section in Settings.model_fields:
        assert f"[{section}]" in text
    for variable in ENVIRONMENT:
        assert variable in text
    assert "redis_url" in text
