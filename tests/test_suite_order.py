"""The suite's own scheduling: the longest files named in tests/conftest.py exist."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LONGEST_FILES

ROOT = Path(__file__).resolve().parent.parent


def test_the_longest_files_exist_and_are_named_once() -> None:
    missing = [name for name in LONGEST_FILES if not (ROOT / name).is_file()]
    assert not missing, f"renamed or removed: {missing} (update LONGEST_FILES)"
    assert len(set(LONGEST_FILES)) == len(LONGEST_FILES)
