"""Where the official specifications the conformance tests run against live: ``specs/`` of the
checkout, vendored so that a clean clone anywhere has them (see ``specs/README.md``)."""

from __future__ import annotations

from pathlib import Path

SPECS = Path(__file__).resolve().parents[1] / "specs"
HSDS = SPECS / "hsds-3.0"
HSDS_SCHEMA = HSDS / "schema"
HSDS_EXAMPLES = HSDS / "examples"
CAPACITY_DRAFT = SPECS / "hsds-3.1-dev-capacity"
