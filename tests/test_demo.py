"""`make demo` runs its four scenes and shows each request's path."""

from __future__ import annotations

import itertools

import pytest

from adapters import demo
from tests.e2e import run


def test_the_demo_shows_four_scenes_with_their_paths(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo.main()) == 0
    out = capsys.readouterr().out
    assert out.count("client saw:") == 4
    assert "Fetching --rate_limited--> Switching" in out
    assert "Fetching --capacity_exhausted--> Switching" in out
    lines = out.splitlines()
    assert not [a for a, b in itertools.pairwise(lines) if a.strip() and a == b]
    assert "then one error event" in out
    assert "Streaming --stream_broken--> Failed" in out
