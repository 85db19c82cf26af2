"""Open Referral HSDS: the referral-net profile of HSDS 3.0 and validators of its schemas.

No database and no web framework here: the validators take plain JSON values, so the API, the
command line and the tests can all check a record against the profile.
"""

from __future__ import annotations

from referral_net.hsds.profile import (
    HSDS_VERSION,
    PROFILE_PATH,
    compiled_schema,
    errors,
    profile_file,
    profile_files,
    profile_url,
    schema_names,
    validator,
)

__all__ = [
    "HSDS_VERSION",
    "PROFILE_PATH",
    "compiled_schema",
    "errors",
    "profile_file",
    "profile_files",
    "profile_url",
    "schema_names",
    "validator",
]
