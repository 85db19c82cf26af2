"""Eligibility rules as SQL filters: the SQL twins of ``matching/eligibility.py``.

Search filters in the database what matching decides in Python, so each rule here must give the
same answer as its twin; ``tests/test_eligibility_sql.py`` checks the gender rule against
``matching.eligibility.gender_served`` case by case on both engines. Only the engine-specific
primitive (JSON list membership) comes from ``db.dialect``; the rule itself is portable.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import Session
from sqlmodel import col

from referral_net.db import dialect
from referral_net.db.models import Service
from referral_net.vocab import TRANS_TO_BINARY


def gender_rule(session: Session, gender: str) -> ColumnElement[bool]:
    """The hard gender rule shared with matching: who may use a service.

    Open to all (null) always; the person's own gender when listed; a trans woman (man) at a
    women-only (men-only) service when it is trans-inclusive or LGBTIQ+-affirming; undisclosed
    only at services open to all.
    """
    open_to_all = col(Service.genders_served).is_(None)
    if gender == "undisclosed":
        return open_to_all
    rule = or_(open_to_all, dialect.genders_served_includes(session, gender))
    binary = TRANS_TO_BINARY.get(gender)
    if binary is not None:
        rule = or_(
            rule,
            and_(
                dialect.genders_served_includes(session, binary),
                or_(
                    col(Service.trans_inclusive).is_(True), col(Service.lgbtiq_affirming).is_(True)
                ),
            ),
        )
    return rule
