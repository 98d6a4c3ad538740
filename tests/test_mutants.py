"""The mutant catalog (tests/mutants/mutants.toml, run by `make mutants`) stays in step with the
engine: every patch's snippet occurs exactly once in the current engine/ and the mutated module
still compiles, so no mutant goes stale unnoticed and none is "killed" by a syntax error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutants.catalog import CATALOG, Mutant, load, mutated_sources
from tests.mutants.run import NEVER, selection

ROOT = Path(__file__).resolve().parents[1]
VERSION, MUTANTS = load()


def test_the_catalog_has_at_least_30_mutants_over_every_engine_area() -> None:
    assert len(MUTANTS) >= 30
    modules = {m.module for m in MUTANTS}
    areas = {"guards", "actions", "pool", "health", "spec", "machine", "bounds", "failures"}
    assert areas | {"request"} <= modules, sorted(areas - modules)


def test_every_invariant_has_a_mutant() -> None:
    covered = {m.invariant for m in MUTANTS}
    assert set(range(1, 9)) <= covered, sorted(set(range(1, 9)) - covered)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_each_mutant_applies_to_the_current_engine_and_compiles(mutant: Mutant) -> None:
    texts, problems = mutated_sources(ROOT, mutant)
    assert not problems, f"{CATALOG.name} [{mutant.id}]: {'; '.join(problems)}"
    for file, text in texts.items():
        assert text != (ROOT / file).read_text(), f"{mutant.id} changes nothing in {file}"
        compile(text, file, "exec")


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_each_mutant_runs_existing_tests_never_this_file(mutant: Mutant) -> None:
    files = selection(mutant)
    assert NEVER not in files
    missing = [f for f in files if not (ROOT / f).is_file()]
    assert not missing, f"{mutant.id}: {missing}"
