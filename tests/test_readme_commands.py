"""The documentation's command lines run as written after set-up.

Issue 10 #18: ``referral-net`` is not on the PATH after ``scripts/run``; the README said it bare.
Every command line in a code block or code span of README.md and docs/*.md must call it as
``.venv/bin/referral-net`` (or ``uv run referral-net``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from referral_net.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
_SPAN = re.compile(r"`([^`\n]+)`")
_ALLOWED_PREFIXES = (".venv/bin/", "uv run ")


def _code(markdown: str) -> list[str]:
    """The fenced code blocks and the inline code spans (tables included) of a document."""
    blocks = _FENCE.findall(markdown)
    return blocks + _SPAN.findall(_FENCE.sub("", markdown))


def _bare_commands(code: str, subcommands: list[str]) -> list[str]:
    pattern = re.compile(r"referral-net\s+(?:" + "|".join(map(re.escape, subcommands)) + r")\b")
    found = []
    for match in pattern.finditer(code):
        before = code[: match.start()]
        if not before.endswith(_ALLOWED_PREFIXES):
            found.append(code[match.start() : match.end() + 20].splitlines()[0])
    return found


def _subcommands() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_the_subcommand_list_is_read_from_the_command() -> None:
    assert {"serve", "db", "keys", "users"} <= set(_subcommands())


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_documented_commands_say_where_the_command_is(document: Path) -> None:
    bare = [
        line
        for code in _code(document.read_text(encoding="utf-8"))
        for line in _bare_commands(code, _subcommands())
    ]
    assert bare == [], f"{document.name}: write .venv/bin/referral-net in {bare}"


def test_the_check_finds_a_bare_command() -> None:
    text = "run `referral-net db upgrade`, then\n```\n.venv/bin/referral-net serve\n```\n"
    assert [b for c in _code(text) for b in _bare_commands(c, ["db", "serve"])] == [
        "referral-net db upgrade"
    ]
