"""Canary: a row committed in one test is gone in the next (per-test rollback really works)."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import Session, select

from referral_net.db.models import Organization

pytestmark = pytest.mark.db

_CANARY_ID = uuid.UUID("00000000-0000-4000-8000-00000000ca9a")


def test_canary_commits_a_row(session: Session) -> None:
    session.add(Organization(id=_CANARY_ID, name="canary (ejemplo)", description="canary"))
    session.commit()
    assert session.get(Organization, _CANARY_ID) is not None


def test_canary_row_is_gone_in_the_next_test(session: Session) -> None:
    found = session.exec(select(Organization).where(Organization.id == _CANARY_ID)).first()
    assert found is None


def test_savepoint_rollback_inside_a_test(session: Session) -> None:
    nested = session.begin_nested()
    session.add(Organization(name="rolled back (ejemplo)", description=""))
    nested.rollback()
    names = session.exec(select(Organization.name)).all()
    assert "rolled back (ejemplo)" not in names
