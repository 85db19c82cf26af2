"""Validate ``seed/sample_network.json`` against ``seed/taxonomy.json`` and the boundaries.

Checks referential integrity (ids, taxonomy codes, organizations), geography (every point
inside its municipality polygon, never on a lake, locations kept apart), coverage (at least
80 service_at_locations, the six Western Highlands departments plus Guatemala City, every
top-level category, the Mayan languages) and safety rules (restricted and confidential
locations have a public intake contact; names end with "(ejemplo)"; fictitious phones and
example.org addresses only).

Usable as a script (prints a summary, exits 1 on failure) or from tests::

    from check_sample import run_checks
    errors, summary = run_checks()
    assert not errors
"""

from __future__ import annotations

import json
import math
import re
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from shapely.geometry import Point, shape
from shapely.prepared import prep

SEED_DIR = Path(__file__).resolve().parent
REPO = SEED_DIR.parent
SAMPLE = SEED_DIR / "sample_network.json"
TAXONOMY = SEED_DIR / "taxonomy.json"
MUNICIPALITIES = REPO / "src" / "referral_net" / "data" / "guatemala" / "municipalities.geojson"

TAXONOMY_BASE = "https://referral-net.org/taxonomy/anti-trafficking"
LAKE_CODES = frozenset({"0100", "0700"})
AREAS = ("07", "08", "09", "12", "13", "14", "0101")
TOP_LEVEL = ("protection", "prosecution", "prevention", "partnerships")
MAYAN = frozenset({"quc", "mam", "kek", "cak", "ixl", "kjb", "tzj", "knj", "jac", "cac"})
LANGUAGES = MAYAN | {"spa", "eng"}
GENDERS = frozenset({"woman", "man", "trans_woman", "trans_man", "non_binary"})
VISIBILITIES = frozenset({"public", "restricted", "confidential"})
DAYS = frozenset({"MO", "TU", "WE", "TH", "FR", "SA", "SU"})
MIN_SAL = 80
MIN_SEPARATION_M = 50.0
MAX_BYTES = 400 * 1024
SUFFIX = "(ejemplo)"

CODE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
PHONE_RE = re.compile(r"^\+50255550\d{3}$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
EMAIL_RE = re.compile(r"^[a-z0-9._-]+@([a-z0-9-]+\.)*example\.org$")


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[1] + b[1]) / 2)
    return math.hypot((a[0] - b[0]) * 111_320 * math.cos(lat), (a[1] - b[1]) * 110_574)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def check_taxonomy(taxonomy: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Return (errors, terms by code)."""
    errors: list[str] = []
    terms: dict[str, dict[str, Any]] = {}
    meta = taxonomy.get("taxonomy", {})
    for key in ("id", "name", "description", "uri", "version"):
        if not meta.get(key):
            errors.append(f"taxonomy: missing {key}")
    for term in taxonomy.get("terms", []):
        code = term.get("code", "")
        where = f"taxonomy term {code!r}"
        if not CODE_RE.match(code):
            errors.append(f"{where}: code is not a lowercase dotted ASCII path")
        if code in terms:
            errors.append(f"{where}: duplicate code")
        expected = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{TAXONOMY_BASE}/{code}"))
        if term.get("id") != expected:
            errors.append(f"{where}: id is not uuid5(NAMESPACE_URL, base/code)")
        parent = term.get("parent_code")
        expected_parent = code.rsplit(".", 1)[0] if "." in code else None
        if parent != expected_parent:
            errors.append(f"{where}: parent_code {parent!r} != {expected_parent!r}")
        if parent is not None and parent not in terms:
            errors.append(f"{where}: parent {parent!r} missing or listed after the child")
        for key in ("name", "description"):
            value = term.get(key) or {}
            if not value.get("es") or not value.get("en"):
                errors.append(f"{where}: {key} needs es and en")
        oe = term.get("open_eligibility")
        if oe is not None and not oe.get("name"):
            errors.append(f"{where}: open_eligibility without name")
        terms[code] = term
    for top in TOP_LEVEL:
        if top not in terms:
            errors.append(f"taxonomy: top-level {top!r} missing")
    return errors, terms


def _load_polygons() -> tuple[dict[str, Any], dict[str, str]]:
    with MUNICIPALITIES.open(encoding="utf-8") as fh:
        features = json.load(fh)["features"]
    polygons = {f["properties"]["ine_code"]: prep(shape(f["geometry"])) for f in features}
    names = {f["properties"]["ine_code"]: f["properties"]["ADM2_ES"] for f in features}
    return polygons, names


def _check_phones(where: str, phones: list[dict[str, Any]], errors: list[str]) -> None:
    for phone in phones:
        if not PHONE_RE.match(phone.get("number", "")):
            errors.append(f"{where}: phone {phone.get('number')!r} is not +50255550xxx")


def _check_languages(where: str, langs: list[str], errors: list[str]) -> None:
    if not langs:
        errors.append(f"{where}: no languages")
    for lang in langs:
        if lang not in LANGUAGES:
            errors.append(f"{where}: unknown language {lang!r}")


def check_sample(
    sample: dict[str, Any], terms: dict[str, dict[str, Any]]
) -> tuple[list[str], dict[str, Any]]:
    """Return (errors, summary) for the sample network."""
    errors: list[str] = []
    polygons, _names = _load_polygons()
    if "ILUSTRATIVOS" not in sample.get("notice", ""):
        errors.append("notice: missing the ILLUSTRATIVE disclaimer")

    all_ids: Counter[str] = Counter()
    for section in ("organizations", "locations", "services", "service_at_locations"):
        for item in sample.get(section, []):
            all_ids[item.get("id", "")] += 1
            if not _is_uuid(item.get("id")):
                errors.append(f"{section}: id {item.get('id')!r} is not a UUID")
    errors += [f"duplicate id {i}" for i, n in all_ids.items() if n > 1]

    orgs = {o["id"]: o for o in sample["organizations"]}
    for org in orgs.values():
        where = f"organization {org['name']!r}"
        if not org["name"].endswith(SUFFIX):
            errors.append(f"{where}: name does not end with {SUFFIX}")
        if org.get("email") and not EMAIL_RE.match(org["email"]):
            errors.append(f"{where}: email not under example.org")
        if org.get("website") and not org["website"].startswith("https://example.org/"):
            errors.append(f"{where}: website not under https://example.org/")

    locations = {loc["id"]: loc for loc in sample["locations"]}
    points: list[tuple[tuple[float, float], str]] = []
    for loc in locations.values():
        where = f"location {loc['name']!r}"
        if not loc["name"].endswith(SUFFIX):
            errors.append(f"{where}: name does not end with {SUFFIX}")
        if loc["organization_id"] not in orgs:
            errors.append(f"{where}: unknown organization")
        if loc["visibility"] not in VISIBILITIES:
            errors.append(f"{where}: bad visibility {loc['visibility']!r}")
        code = loc["municipality_code"]
        if code in LAKE_CODES or code not in polygons:
            errors.append(f"{where}: {code!r} is not a municipality")
        else:
            pt = Point(loc["longitude"], loc["latitude"])
            if not polygons[code].contains(pt):
                errors.append(f"{where}: point outside municipality {code}")
            if any(polygons[lake].contains(pt) for lake in LAKE_CODES):
                errors.append(f"{where}: point on a lake")
        if loc["department_code"] != code[:2]:
            errors.append(f"{where}: department_code does not match municipality")
        xy = (loc["longitude"], loc["latitude"])
        for other_xy, other_name in points:
            if _metres(xy, other_xy) < MIN_SEPARATION_M:
                errors.append(f"{where}: closer than {MIN_SEPARATION_M} m to {other_name!r}")
        points.append((xy, loc["name"]))
        if loc["visibility"] != "public":
            intake = loc.get("intake_contact")
            if not intake or not PHONE_RE.match(intake.get("phone", "")):
                errors.append(f"{where}: {loc['visibility']} location needs intake_contact")
        if loc["address"].get("country") != "GT":
            errors.append(f"{where}: address country is not GT")
        _check_phones(where, loc.get("phones", []), errors)
        _check_languages(where, loc.get("languages", []), errors)

    services = {s["id"]: s for s in sample["services"]}
    for svc in services.values():
        where = f"service {svc['name']!r}"
        if not svc["name"].endswith(SUFFIX):
            errors.append(f"{where}: name does not end with {SUFFIX}")
        if svc["organization_id"] not in orgs:
            errors.append(f"{where}: unknown organization")
        if not svc["categories"]:
            errors.append(f"{where}: no categories")
        errors += [f"{where}: unknown category {c!r}" for c in svc["categories"] if c not in terms]
        _check_languages(where, svc["languages"], errors)
        _check_phones(where, svc.get("phones", []), errors)
        if svc.get("email") and not EMAIL_RE.match(svc["email"]):
            errors.append(f"{where}: email not under example.org")
        if svc.get("url") and not svc["url"].startswith("https://example.org/"):
            errors.append(f"{where}: url not under https://example.org/")
        lo, hi = svc["minimum_age"], svc["maximum_age"]
        if lo is not None and hi is not None and lo > hi:
            errors.append(f"{where}: minimum_age > maximum_age")
        if svc["minors_only"] and (hi is None or hi > 17):
            errors.append(f"{where}: minors_only but maximum_age is not <= 17")
        genders = svc["genders_served"]
        if genders is not None and (not genders or set(genders) - GENDERS):
            errors.append(f"{where}: bad genders_served {genders!r}")
        for sch in svc["schedules"]:
            days = sch["byday"].split(",")
            if sch["freq"] != "WEEKLY" or set(days) - DAYS:
                errors.append(f"{where}: bad schedule {sch!r}")
            if not TIME_RE.match(sch["opens_at"]) or not TIME_RE.match(sch["closes_at"]):
                errors.append(f"{where}: bad schedule times {sch!r}")
        for cap in svc["capacity"]:
            if not 0 <= cap["available"] <= cap["maximum"]:
                errors.append(f"{where}: capacity available outside 0..maximum")
        is_shelter = any(c.startswith("protection.shelter") for c in svc["categories"])
        if svc["capacity"] and not is_shelter:
            errors.append(f"{where}: capacity on a non-shelter service")
        for area in svc["service_areas"]:
            for code in area.get("municipality_codes", []):
                if code not in polygons or code in LAKE_CODES:
                    errors.append(f"{where}: service area municipality {code!r} unknown")
            for dept in area.get("department_codes", []):
                if not any(c.startswith(dept) for c in polygons):
                    errors.append(f"{where}: service area department {dept!r} unknown")

    pairs: set[tuple[str, str]] = set()
    served_services: set[str] = set()
    served_locations: set[str] = set()
    area_counts: Counter[str] = Counter()
    dept_counts: Counter[str] = Counter()
    vis_counts: Counter[str] = Counter()
    for sal in sample["service_at_locations"]:
        svc = services.get(sal["service_id"])
        loc = locations.get(sal["location_id"])
        if svc is None or loc is None:
            errors.append(f"service_at_location {sal['id']}: unknown service or location")
            continue
        pair = (sal["service_id"], sal["location_id"])
        if pair in pairs:
            errors.append(f"service_at_location {sal['id']}: duplicate pair")
        pairs.add(pair)
        if svc["organization_id"] != loc["organization_id"]:
            errors.append(f"service_at_location {sal['id']}: service and location orgs differ")
        served_services.add(svc["id"])
        served_locations.add(loc["id"])
        dept_counts[loc["department_code"]] += 1
        vis_counts[loc["visibility"]] += 1
        area = "0101" if loc["municipality_code"] == "0101" else loc["department_code"]
        area_counts[area] += 1
    errors += [
        f"service {s['name']!r}: no location"
        for s in services.values()
        if s["id"] not in served_services
    ]
    errors += [
        f"location {loc['name']!r}: no service"
        for loc in locations.values()
        if loc["id"] not in served_locations
    ]

    # Coverage
    n_sal = len(sample["service_at_locations"])
    if n_sal < MIN_SAL:
        errors.append(f"only {n_sal} service_at_locations (< {MIN_SAL})")
    errors += [f"area {a}: no service_at_locations" for a in AREAS if not area_counts[a]]
    used = {c for s in services.values() for c in s["categories"]}
    used_with_ancestors = {c.split(".")[0] for c in used}
    errors += [
        f"top-level category {t!r} unused" for t in TOP_LEVEL if t not in used_with_ancestors
    ]
    leaves = {c for c in terms if not any(o.startswith(c + ".") for o in terms)}
    unused_leaves = sorted(leaves - used)
    if len(unused_leaves) > len(leaves) // 4:
        errors.append(f"too many unused leaf terms: {unused_leaves}")
    langs_used = {lang for s in services.values() for lang in s["languages"]}
    errors += [
        f"Mayan language {m!r} not offered by any service" for m in sorted(MAYAN - langs_used)
    ]

    shelters = [
        s
        for s in services.values()
        if any(c.startswith("protection.shelter") for c in s["categories"])
    ]
    hotlines_24h = [
        s
        for s in services.values()
        if "protection.hotline" in s["categories"]
        and any(
            sch["opens_at"] == sch["closes_at"] == "00:00" and len(sch["byday"].split(",")) == 7
            for sch in s["schedules"]
        )
    ]
    loc_vis = Counter(loc["visibility"] for loc in locations.values())
    features = {
        "24-hour hotline": bool(hotlines_24h),
        "full shelter (available 0)": any(
            c["available"] == 0 for s in shelters for c in s["capacity"]
        ),
        "stale shelter capacity (> 72 h)": any(
            c["updated_hours_ago"] > 72 for s in shelters for c in s["capacity"]
        ),
        "LGBTIQ+ shelter": any("protection.shelter.lgbtiq" in s["categories"] for s in shelters),
        "adolescent shelter (12-17, minors only)": any(
            s["minimum_age"] == 12 and s["maximum_age"] == 17 and s["minors_only"] for s in shelters
        ),
        "women-only shelter, not affirming": any(
            s["genders_served"] == ["woman"] and not s["lgbtiq_affirming"] for s in shelters
        ),
        "women shelter, trans inclusive": any(
            s["genders_served"] and "trans_woman" in s["genders_served"] and s["trans_inclusive"]
            for s in shelters
        ),
        "shelter accepting accompanying children": any(
            s["accepts_accompanying_children"] for s in shelters
        ),
        "shelter not accepting accompanying children": any(
            not s["accepts_accompanying_children"] for s in shelters
        ),
        "overnight schedule": any(
            sch["opens_at"] > sch["closes_at"] for s in services.values() for sch in s["schedules"]
        ),
        "verification due (assured > 180 days)": any(
            (s["assured_days_ago"] or 0) > 180 for s in services.values()
        ),
        ">= 2 restricted locations": loc_vis["restricted"] >= 2,
        ">= 2 confidential locations": loc_vis["confidential"] >= 2,
        "regional / national service areas": any(s["service_areas"] for s in services.values()),
    }
    errors += [f"missing feature: {name}" for name, ok in features.items() if not ok]

    size = SAMPLE.stat().st_size if SAMPLE.exists() else 0
    if size > MAX_BYTES:
        errors.append(f"{SAMPLE.name} is {size} bytes (> {MAX_BYTES})")

    summary = {
        "organizations": len(orgs),
        "locations": len(locations),
        "services": len(services),
        "service_at_locations": n_sal,
        "service_at_locations_by_area": dict(sorted(area_counts.items())),
        "service_at_locations_by_department": dict(sorted(dept_counts.items())),
        "service_at_locations_by_visibility": dict(sorted(vis_counts.items())),
        "locations_by_visibility": dict(sorted(loc_vis.items())),
        "shelter_services": len(shelters),
        "categories_used": len(used),
        "unused_leaf_terms": unused_leaves,
        "languages_offered": sorted(langs_used),
        "size_bytes": size,
    }
    return errors, summary


def run_checks(
    sample_path: Path = SAMPLE, taxonomy_path: Path = TAXONOMY
) -> tuple[list[str], dict[str, Any]]:
    """Load both files and run every check. Returns (errors, summary)."""
    taxonomy = json.loads(taxonomy_path.read_text(encoding="utf-8"))
    sample = json.loads(sample_path.read_text(encoding="utf-8"))
    tax_errors, terms = check_taxonomy(taxonomy)
    sample_errors, summary = check_sample(sample, terms)
    summary["taxonomy_terms"] = len(terms)
    return tax_errors + sample_errors, summary


def main() -> int:
    errors, summary = run_checks()
    for key, value in summary.items():
        print(f"{key}: {value}")
    if errors:
        print(f"\nFAILED: {len(errors)} problem(s)")
        for err in errors:
            print(f"  - {err}")
        return 1
    print("\nOK: sample network and taxonomy are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
