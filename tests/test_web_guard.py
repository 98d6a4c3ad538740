"""The browser defences' decisions, table-driven (`adapters.web_guard`); the end-to-end checks
against the real proxy are in `tests/test_e2e_browser.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.config import ConfigError, load_settings
from adapters.web_guard import host_allowed, same_origin, split_host

HOSTS = [
    # (Host header, allowed names, accepted)
    ("127.0.0.1", (), True),
    ("127.0.0.1:8080", (), True),
    ("localhost:8080", (), True),
    ("LocalHost.:8080", (), True),
    ("[::1]:8080", (), True),
    ("[::1]", (), True),
    ("10.0.0.7:8080", (), True),  # an IP address cannot be rebound
    ("[fe80::1]:8080", (), True),
    ("evil.example:8080", (), False),
    ("localhost.evil.example", (), False),
    ("127.0.0.1.nip.io:8080", (), False),
    ("proxy.lan:8080", ("proxy.lan",), True),
    ("sub.proxy.lan:8080", ("proxy.lan",), False),
    ("anything.example", ("*",), True),
    ("", (), False),
    ("localhost:80a", (), False),
    ("[::1]x", (), False),
    ("::1", (), False),  # IPv6 without brackets is not a Host
    ("127.0.0.1\udcff", (), False),  # a non-UTF-8 byte, as aiohttp hands it over
]


@pytest.mark.parametrize(("host", "allowed", "accepted"), HOSTS)
def test_the_host_allow_list_accepts_loopback_ip_addresses_and_configured_names_only(
    host: str, allowed: tuple[str, ...], accepted: bool
) -> None:
    assert host_allowed(host, frozenset(allowed)) is accepted


ORIGINS = [
    # (Origin, Host, same origin)
    ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
    ("http://localhost", "localhost:80", True),
    ("https://localhost", "localhost:443", True),
    ("http://[::1]:8080", "[::1]:8080", True),
    ("http://LOCALHOST:8080", "localhost:8080", True),
    ("http://localhost:3000", "localhost:8080", False),  # another port: another origin
    ("https://localhost:8080", "localhost:8080", True),  # the scheme is not in Host
    ("http://evil.example", "127.0.0.1:8080", False),
    ("null", "127.0.0.1:8080", False),
    ("file://", "127.0.0.1:8080", False),
    ("chrome-extension://abc", "127.0.0.1:8080", False),
    ("http://127.0.0.1:8080/path", "127.0.0.1:8080", False),  # not an origin
    ("", "127.0.0.1:8080", False),
]


@pytest.mark.parametrize(("origin", "host", "same"), ORIGINS)
def test_an_origin_is_the_proxys_own_only_when_name_and_port_match_the_host(
    origin: str, host: str, same: bool
) -> None:
    assert same_origin(origin, host) is same


def test_a_host_splits_into_a_lower_case_name_and_port() -> None:
    assert split_host("Proxy.LAN.:8080") == ("proxy.lan", "8080")
    assert split_host("[::1]:9") == ("::1", "9")
    assert split_host("[::1]") == ("::1", "")
    assert split_host(":8080") is None


def test_allowed_hosts_are_bare_names_and_a_url_or_port_fails_naming_the_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "interlock.toml"
    path.write_text('[server]\nallowed_hosts = ["Proxy.Lan."]\n')
    assert load_settings(path, env={}).server.allowed_hosts == ("proxy.lan",)
    for bad in ('"http://proxy.lan"', '"proxy.lan:8080"', '""'):
        path.write_text(f"[server]\nallowed_hosts = [{bad}]\n")
        with pytest.raises(ConfigError, match=r"server\.allowed_hosts"):
            load_settings(path, env={})
