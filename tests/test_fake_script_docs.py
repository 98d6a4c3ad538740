"""The fake upstream's script format is documented (`interlock fake-upstream --help`, the
README), and the documentation stays true: every documented kind is accepted, every accepted
kind is documented, and the example works against a running fake."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from adapters.fake import FakeUpstream, from_spec
from adapters.fake.command import build_parser
from adapters.fake.presets import PRESET_NAMES
from adapters.fake.specs import SCRIPT_FORMAT
from tests.e2e import run

README = Path(__file__).resolve().parent.parent / "README.md"
#: The smallest valid spec of every kind `from_spec` accepts.
KINDS = {
    "stream": {},
    "final_without_newline": {},
    "empty": {},
    "error": {"status": 503},
    "preset": {"name": "quota_429"},
    "drop_before": {},
    "drop_after": {},
    "hang": {},
    "endless": {},
    "error_in_stream": {},
    "sse": {},
    "normal": {},
}


def documented_kinds() -> set[str]:
    return set(re.findall(r"^  ([a-z_]+) {2,}", SCRIPT_FORMAT, flags=re.MULTILINE))


def test_fake_upstream_help_documents_the_admin_routes_every_answer_kind_and_preset() -> None:
    help_text = build_parser().format_help()
    for route in (
        "/_fake/script",
        "/_fake/default",
        "/_fake/log",
        "/_fake/accounts",
        "/_fake/quota",
    ):
        assert route in help_text
    assert documented_kinds() == set(KINDS)
    for name in PRESET_NAMES:
        assert name in help_text


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_documented_answer_kind_is_accepted(kind: str) -> None:
    assert from_spec({"kind": kind, **KINDS[kind]}).label
    with pytest.raises(ValueError, match="unknown answer kind"):
        from_spec({"kind": kind + "-not"})


def test_the_scripting_example_in_the_help_works_against_a_running_fake() -> None:
    example = re.search(r"-d '(.+?)'", SCRIPT_FORMAT, flags=re.DOTALL)
    assert example is not None
    payload = json.loads(example.group(1))

    async def scenario() -> None:
        async with FakeUpstream() as fake, aiohttp.ClientSession() as session:
            fake.add_account("account-1")
            async with session.post(fake.auth_url + "/_fake/script", json=payload) as response:
                assert response.status == 200
                assert await response.json() == {"queued": 2, "pending": 2}

    run(scenario(), timeout=30)


def test_the_readme_points_at_the_script_format() -> None:
    text = README.read_text(encoding="utf-8")
    assert "interlock fake-upstream --help" in text and "/_fake/script" in text
