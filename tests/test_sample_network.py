"""The illustrative sample network: it is consistent, and it loads through the API's own rules
on both backends with every location placed in the municipality the boundary files say."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from referral_net.db.models import Location, Service, ServiceAtLocation
from referral_net.domain import seed
from referral_net.vocab import Visibility

ROOT = Path(__file__).resolve().parents[1]


def _check_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_sample", ROOT / "seed/check_sample.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sample_file_passes_its_checks() -> None:
    errors, _summary = _check_module().run_checks()
    assert errors == []


@pytest.mark.db
def test_sample_loads_through_the_domain_on_each_backend(session: Session) -> None:
    raw = json.loads((ROOT / "seed/sample_network.json").read_text(encoding="utf-8"))
    report = seed.load_sample(session=session)
    assert report.service_at_locations >= 80
    assert int(session.exec(select(func.count()).select_from(ServiceAtLocation)).one()) == len(
        raw["service_at_locations"]
    )
    # The codes the server computed from its polygons equal the generator's shapely codes.
    for item in raw["locations"]:
        stored = session.get(Location, uuid.UUID(item["id"]))
        assert stored is not None
        assert stored.municipality_code == item["municipality_code"], item["name"]
        assert stored.department_code == item["department_code"]
    visibilities = set(session.exec(select(Location.visibility)).all())
    assert visibilities == {v.value for v in Visibility}
    names = session.exec(select(Service.name)).all()
    assert all(name.endswith("(ejemplo)") for name in names)
    departments = set(
        session.exec(
            select(Location.department_code).where(col(Location.department_code).is_not(None))
        )
    )
    assert {"07", "08", "09", "12", "13", "14", "01"} <= departments
    assert seed.is_loaded(session=session)
