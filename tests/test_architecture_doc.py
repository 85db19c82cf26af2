"""docs/architecture.md's module map names every module of the package, and only modules that exist.

The map is the first fenced code block under the ``## Module map`` heading. Each entry starts at
the beginning of a line with a path relative to ``src/referral_net/`` (``domain/places.py``, or a
package or folder ending in ``/``), then its description; indented lines continue a description
and lines starting with ``#`` are comments. A package's ``__init__.py`` is covered by the
package's entry. A pure file test: no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "referral_net"
DOCUMENT = ROOT / "docs" / "architecture.md"
MAP_HEADING = "## Module map"

_FENCE = "```"
_ENTRY = re.compile(
    r"^(?P<path>[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*(?:\.py|/))(?:\s+(?P<what>\S.*))?$"
)


@dataclass(frozen=True)
class Entry:
    """One entry of the module map: the path it names and its line in the document."""

    path: str
    line: int
    description: str


def _map_lines(markdown: str) -> list[tuple[int, str]]:
    """The lines (with their 1-based line numbers) of the map's fenced block."""
    lines = markdown.splitlines()
    try:
        heading = next(i for i, line in enumerate(lines) if line.strip() == MAP_HEADING)
    except StopIteration:
        pytest.fail(f"{DOCUMENT.name} has no '{MAP_HEADING}' heading")
    opening = None
    for i in range(heading + 1, len(lines)):
        if lines[i].startswith("## "):
            break
        if lines[i].startswith(_FENCE):
            opening = i
            break
    if opening is None:
        pytest.fail(f"no fenced code block under '{MAP_HEADING}' in {DOCUMENT.name}")
    for i in range(opening + 1, len(lines)):
        if lines[i].startswith(_FENCE):
            return [(n + 1, lines[n]) for n in range(opening + 1, i)]
    pytest.fail(f"the module map's code block in {DOCUMENT.name} is never closed")


def parse_module_map(markdown: str) -> tuple[list[Entry], list[str]]:
    """The map's entries, and the lines that follow none of its conventions."""
    entries: list[Entry] = []
    unreadable: list[str] = []
    for number, line in _map_lines(markdown):
        if not line.strip() or line.startswith("#") or line[0].isspace():
            continue  # blank, a comment, or the continuation of a description
        match = _ENTRY.match(line.rstrip())
        if match is None:
            unreadable.append(f"line {number}: {line.strip()}")
            continue
        entries.append(Entry(match["path"], number, match["what"] or ""))
    return entries, unreadable


def package_modules(package: Path = PACKAGE) -> set[str]:
    """Every module (``*.py`` but ``__init__.py``) and package under ``package``, as map paths."""
    found: set[str] = set()
    for source in package.rglob("*.py"):
        relative = source.relative_to(package)
        if "__pycache__" in relative.parts:
            continue
        if source.name != "__init__.py":
            found.add(relative.as_posix())
        # Every folder holding Python code, up to the package root, is a package of its own.
        for parent in relative.parents:
            if parent != Path():
                found.add(parent.as_posix() + "/")
    return found


def _exists(path: str, package: Path = PACKAGE) -> bool:
    target = package / path.rstrip("/")
    return target.is_dir() if path.endswith("/") else target.is_file()


@pytest.fixture(scope="module")
def module_map() -> list[Entry]:
    """The entries of docs/architecture.md's module map (every line of it readable)."""
    entries, unreadable = parse_module_map(DOCUMENT.read_text(encoding="utf-8"))
    assert not unreadable, (
        f"{DOCUMENT.name}, module map: these lines start at the beginning of the line but are "
        "not '<path>.py description' or '<path>/ description' (indent a continued description, "
        "start a comment with '#'):\n  " + "\n  ".join(unreadable)
    )
    return entries


def test_every_module_and_package_has_an_entry(module_map: list[Entry]) -> None:
    named = {entry.path for entry in module_map}
    missing = sorted(package_modules() - named)
    assert not missing, (
        f"{len(missing)} module(s) or package(s) of src/referral_net/ have no line in the "
        f"module map of docs/architecture.md; add one each (path, then what it is for):\n  "
        + "\n  ".join(missing)
    )


def test_every_entry_names_an_existing_path(module_map: list[Entry]) -> None:
    stale = [f"line {e.line}: {e.path}" for e in module_map if not _exists(e.path)]
    assert not stale, (
        "the module map of docs/architecture.md names paths that do not exist under "
        "src/referral_net/ (moved or deleted? update or remove their lines):\n  "
        + "\n  ".join(stale)
    )


def test_every_entry_is_named_once_and_says_what_it_is(module_map: list[Entry]) -> None:
    seen: dict[str, int] = {}
    problems = []
    for entry in module_map:
        if entry.path in seen:
            problems.append(f"line {entry.line}: {entry.path} (already on line {seen[entry.path]})")
        seen.setdefault(entry.path, entry.line)
        if not entry.description:
            problems.append(f"line {entry.line}: {entry.path} has no description")
    assert not problems, "module map of docs/architecture.md:\n  " + "\n  ".join(problems)


# --- the checks themselves ----------------------------------------------------------------------

_SAMPLE = """# Architecture

## Module map

```
# a comment
main.py          the app
domain/          the domain
domain/places.py where sites are placed,
                 continued here: domain/ghost.py is not an entry
api/routers/search.py  the search route
```

```
not/the/map.py   a later block is not read
```
"""


def test_the_parser_reads_entries_and_skips_comments_and_continuations() -> None:
    entries, unreadable = parse_module_map(_SAMPLE)
    assert unreadable == []
    assert [e.path for e in entries] == [
        "main.py",
        "domain/",
        "domain/places.py",
        "api/routers/search.py",
    ]
    assert entries[2].description == "where sites are placed,"
    assert entries[0].line == 7


def test_the_parser_reports_a_line_that_follows_no_convention() -> None:
    sample = _SAMPLE.replace("main.py          the app", "main          the app")
    _, unreadable = parse_module_map(sample)
    assert unreadable == ["line 7: main          the app"]


def test_the_walk_finds_modules_and_packages_but_not_init_files(tmp_path: Path) -> None:
    (tmp_path / "domain" / "search").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    for name in ("__init__.py", "main.py", "domain/__init__.py", "domain/search/__init__.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "domain" / "search" / "plan.py").write_text("")
    (tmp_path / "data" / "areas.csv").write_text("")
    assert package_modules(tmp_path) == {
        "main.py",
        "domain/",
        "domain/search/",
        "domain/search/plan.py",
    }
