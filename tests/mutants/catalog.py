"""The mutant catalog (tests/mutants/mutants.toml): loading, checking and applying its patches.

A patch is textual: an exact `find` snippet that must occur exactly once in its file, and its
`replace`. When the engine changes under a mutant, the snippet is gone (STALE) or ambiguous, and
the mutant is reported as such instead of silently mutating the wrong line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

CATALOG = Path(__file__).with_name("mutants.toml")
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")


@dataclass(frozen=True, slots=True)
class Patch:
    file: str
    find: str
    replace: str


@dataclass(frozen=True, slots=True)
class Mutant:
    id: str
    description: str
    catches: str
    invariant: int
    patches: tuple[Patch, ...]
    tests: tuple[str, ...] = ()
    """Test files run before the runner's default selection (e.g. a module's unit tests)."""

    @property
    def module(self) -> str:
        return Path(self.patches[0].file).stem


class CatalogError(ValueError):
    """The catalog itself is malformed (not a stale snippet: that is `problems`)."""


def load(path: Path = CATALOG) -> tuple[int, list[Mutant]]:
    """(catalog version, mutants in file order)."""
    data = tomllib.loads(path.read_text())
    mutants: list[Mutant] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("mutant", [])):
        where = f"{path.name}: mutant #{i + 1} ({raw.get('id', '?')})"
        unknown = set(raw) - {"id", "description", "catches", "invariant", "tests", "patch"}
        if unknown:
            raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
        try:
            mutant = Mutant(
                id=raw["id"],
                description=raw["description"],
                catches=raw["catches"],
                invariant=int(raw["invariant"]),
                tests=tuple(raw.get("tests", ())),
                patches=tuple(Patch(p["file"], p["find"], p["replace"]) for p in raw["patch"]),
            )
        except KeyError as err:
            raise CatalogError(f"{where}: missing {err}") from None
        if not _ID.match(mutant.id):
            raise CatalogError(f"{where}: id must be lower-case words joined by '-'")
        if mutant.id in seen:
            raise CatalogError(f"{where}: duplicate id")
        seen.add(mutant.id)
        if not mutant.description.strip() or "\n" in mutant.description:
            raise CatalogError(f"{where}: the description is one non-empty line")
        if not mutant.catches.strip():
            raise CatalogError(f"{where}: say what must catch it (catches)")
        if not 0 <= mutant.invariant <= 8:
            raise CatalogError(f"{where}: invariant is 1-8 (DESIGN §2), or 0")
        if not mutant.patches:
            raise CatalogError(f"{where}: no patch")
        for p in mutant.patches:
            if not p.file.startswith("engine/") or ".." in p.file:
                raise CatalogError(f"{where}: patches touch engine/ only, not {p.file}")
            if not p.find or p.find == p.replace:
                raise CatalogError(f"{where}: an empty find, or a replace that changes nothing")
        mutants.append(mutant)
    return int(data["version"]), mutants


def mutated_sources(root: Path, mutant: Mutant) -> tuple[dict[str, str], list[str]]:
    """The mutated text of each file the mutant touches (patches applied in order), and its
    problems: `STALE: ...` when a snippet is not found, `AMBIGUOUS: ...` when it occurs more
    than once. Nothing is written."""
    texts: dict[str, str] = {}
    problems: list[str] = []
    for n, p in enumerate(mutant.patches, 1):
        path = root / p.file
        if p.file not in texts:
            if not path.is_file():
                problems.append(f"STALE: {p.file} does not exist")
                continue
            texts[p.file] = path.read_text()
        count = texts[p.file].count(p.find)
        label = f"patch {n}" if len(mutant.patches) > 1 else "snippet"
        if count == 0:
            problems.append(f"STALE: {label} not found in {p.file}")
        elif count > 1:
            problems.append(f"AMBIGUOUS: {label} occurs {count} times in {p.file}")
        else:
            texts[p.file] = texts[p.file].replace(p.find, p.replace)
    return texts, problems


def apply(root: Path, mutant: Mutant) -> list[str]:
    """Apply the mutant to the tree at `root` (a copy!); its problems, and then nothing is
    written."""
    texts, problems = mutated_sources(root, mutant)
    if problems:
        return problems
    for file, text in texts.items():
        (root / file).write_text(text)
    return []
