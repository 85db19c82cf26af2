"""Who names a new record: the server, unless a steward or a trusted import keeps its own id.

A caller-chosen id that collides with an existing record is refused with a 409. Were any caller
allowed to choose, that answer would tell a provider that a record exists which it may not see
(another organization's confidential site). So everyone but stewards, who see every record, and
imports (domain calls with ``trusted=True``) gets a server-assigned UUID, and naming one is a 422.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, SQLModel

from referral_net.domain import access
from referral_net.domain.common import ensure_new_id
from referral_net.errors import InvalidInput
from referral_net.security.roles import Principal

_FIELD = "body.id"
_MESSAGE = "only stewards choose a record id; leave it out and the server assigns one"


def record_id(
    session: Session,
    model: type[SQLModel],
    requested: uuid.UUID | None,
    *,
    principal: Principal,
    trusted: bool = False,
) -> uuid.UUID:
    """The id of a new record: ``requested`` for stewards and trusted imports, else a new UUID.

    A non-steward who names an id gets a 422 naming the field (the value is not echoed).
    """
    if requested is not None and not (trusted or access.may_choose_ids(principal)):
        raise InvalidInput(
            f"Invalid values in: {_FIELD}",
            errors=[
                {"field": _FIELD, "location": "body", "message": _MESSAGE, "type": "value_error"}
            ],
        )
    return ensure_new_id(session, model, requested)
