"""Generate ``seed/sample_network.json``: an ILLUSTRATIVE anti-trafficking referral network.

The sample covers the six Western Highlands departments of Guatemala (Quetzaltenango 09,
Huehuetenango 13, San Marcos 12, Totonicapán 08, Quiché 14, Sololá 07) plus Guatemala City
(municipality 0101). Every organization, location and service name ends with " (ejemplo)";
phone numbers are fictitious (+502 5555 0xxx), e-mails use example.org.

The output is deterministic: ids are uuid5 values of readable keys, points are town points
from ``seed/places.csv`` (or the municipality inside point) moved by an offset derived from a
SHA-256 hash of the location key, then checked to fall inside the municipality polygon and at
least ``MIN_SEPARATION_M`` metres from every other location.

Run: ``.venv/bin/python seed/generate_sample.py`` (writes next to this file).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shapely.geometry import Point, shape
from shapely.prepared import prep

SEED_DIR = Path(__file__).resolve().parent
REPO = SEED_DIR.parent
GT_DATA = REPO / "src" / "referral_net" / "data" / "guatemala"
MUNICIPALITIES = GT_DATA / "municipalities.geojson"
CENTROIDS = GT_DATA / "municipality_centroids.csv"
PLACES = SEED_DIR / "places.csv"
TAXONOMY = SEED_DIR / "taxonomy.json"
OUTPUT = SEED_DIR / "sample_network.json"

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://referral-net.org/seed/sample-network")
LAKE_CODES = frozenset({"0100", "0700"})
MIN_SEPARATION_M = 60.0
SUFFIX = " (ejemplo)"

NOTICE = (
    "Datos ILUSTRATIVOS / ILLUSTRATIVE sample data: fictitious names, phones and exact points. "
    "Not a real directory. Boundaries: OCHA / CONRED (COD-AB Guatemala). Places: GeoNames "
    "(CC BY 4.0), countries-states-cities-database (ODbL)."
)

# Department code -> default languages spoken at locations there (ISO 639-3).
DEPT_LANGS: dict[str, list[str]] = {
    "01": ["spa"],
    "07": ["spa", "cak"],
    "08": ["spa", "quc"],
    "09": ["spa", "quc", "mam"],
    "12": ["spa", "mam"],
    "13": ["spa", "mam"],
    "14": ["spa", "quc"],
}
REGION = {"01": "Región Metropolitana"} | dict.fromkeys(
    ("07", "08", "09", "12", "13", "14"), "Altiplano Occidental"
)
MAYAN = ["quc", "mam", "kek", "cak", "ixl", "kjb", "tzj", "knj", "jac", "cac"]
WESTERN_HIGHLANDS = ["09", "13", "12", "08", "14", "07"]

DAYS_ALL = "MO,TU,WE,TH,FR,SA,SU"
DAYS_WEEK = "MO,TU,WE,TH,FR"


def sid(kind: str, key: str) -> str:
    """Stable uuid5 id for an entity of ``kind`` with readable ``key``."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def sched(byday: str, opens: str, closes: str, description: str) -> dict[str, str]:
    return {
        "freq": "WEEKLY",
        "byday": byday,
        "opens_at": opens,
        "closes_at": closes,
        "description": description,
    }


H24 = [sched(DAYS_ALL, "00:00", "00:00", "Atención 24 horas, todos los días")]
OFFICE = [sched(DAYS_WEEK, "08:00", "16:30", "Lunes a viernes")]
OFFICE_SAT = [
    sched(DAYS_WEEK, "08:00", "17:00", "Lunes a viernes"),
    sched("SA", "08:00", "12:00", "Sábados por la mañana"),
]
CLINIC = [sched(DAYS_WEEK, "07:00", "15:00", "Consulta externa, lunes a viernes")]
NIGHT = [sched(DAYS_ALL, "18:00", "06:00", "Todas las noches, de 18:00 a 06:00")]
COMMUNITY = [
    sched("TU,TH", "09:00", "13:00", "Martes y jueves por la mañana"),
    sched("SA", "09:00", "12:00", "Sábados, reuniones comunitarias"),
]
CHAT = [sched("MO,TU,WE,TH,FR,SA", "14:00", "22:00", "Lunes a sábado por la tarde y noche")]

FREE = [{"option": "Gratuito", "amount": 0, "currency": "GTQ"}]
NO_DOCS = [{"document": "Ninguno: no se exige documento de identificación (DPI)"}]


# ---------------------------------------------------------------------------------------
# Reference geography
# ---------------------------------------------------------------------------------------


@dataclass
class Geo:
    """Municipality polygons, names, inside points and town points."""

    polygons: dict[str, Any] = field(default_factory=dict)
    prepared: dict[str, Any] = field(default_factory=dict)
    names: dict[str, tuple[str, str]] = field(default_factory=dict)
    inside: dict[str, tuple[float, float]] = field(default_factory=dict)
    towns: dict[str, list[tuple[str, float, float, int]]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Geo:
        geo = cls()
        with MUNICIPALITIES.open(encoding="utf-8") as fh:
            features = json.load(fh)["features"]
        for feat in features:
            props = feat["properties"]
            code = props["ine_code"]
            poly = shape(feat["geometry"])
            geo.polygons[code] = poly
            geo.prepared[code] = prep(poly)
            geo.names[code] = (props["ADM2_ES"], props["ADM1_ES"])
        with CENTROIDS.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                geo.inside[row["ine_code"]] = (float(row["inside_lon"]), float(row["inside_lat"]))
        with PLACES.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row["source"] != "geonames":
                    continue
                pop = int(row["population"] or 0)
                geo.towns.setdefault(row["adm2_ine"], []).append(
                    (row["name"], float(row["lon"]), float(row["lat"]), pop)
                )
        return geo

    def contains(self, code: str, lon: float, lat: float) -> bool:
        pt = Point(lon, lat)
        if any(self.prepared[lake].contains(pt) for lake in LAKE_CODES):
            return False
        return bool(self.prepared[code].contains(pt))

    def anchor(self, code: str, town: str | None) -> tuple[float, float]:
        """Town point (named, else most populous GeoNames place) or the inside point."""
        candidates = [t for t in self.towns.get(code, []) if self.contains(code, t[1], t[2])]
        if town is not None:
            named = [t for t in candidates if t[0] == town]
            if not named:
                raise ValueError(f"town {town!r} not found in municipality {code}")
            return named[0][1], named[0][2]
        if candidates:
            best = max(candidates, key=lambda t: t[3])
            return best[1], best[2]
        return self.inside[code]


def metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Equirectangular distance in metres between two (lon, lat) points (fine below 10 km)."""
    lat = math.radians((a[1] + b[1]) / 2)
    dx = (a[0] - b[0]) * 111_320 * math.cos(lat)
    dy = (a[1] - b[1]) * 110_574
    return math.hypot(dx, dy)


class Placer:
    """Deterministic jitter of anchor points, with containment and separation checks."""

    def __init__(self, geo: Geo) -> None:
        self.geo = geo
        self.placed: list[tuple[float, float]] = []

    def place(self, key: str, code: str, town: str | None, radius_m: float) -> tuple[float, float]:
        anchors = [self.geo.anchor(code, town), self.geo.inside[code]]
        for anchor in anchors:
            for attempt in range(200):
                digest = hashlib.sha256(f"{key}:{attempt}".encode()).digest()
                angle = int.from_bytes(digest[:4], "big") / 2**32 * 2 * math.pi
                frac = int.from_bytes(digest[4:8], "big") / 2**32
                dist = 60 + frac * max(radius_m - 60, 0)
                lat = anchor[1] + dist * math.sin(angle) / 110_574
                lon = anchor[0] + dist * math.cos(angle) / (
                    111_320 * math.cos(math.radians(anchor[1]))
                )
                pt = (round(lon, 6), round(lat, 6))
                if not self.geo.contains(code, *pt):
                    continue
                if any(metres_between(pt, other) < MIN_SEPARATION_M for other in self.placed):
                    continue
                self.placed.append(pt)
                return pt
        raise RuntimeError(f"could not place {key} in {code}")


class Phones:
    """Sequential fictitious numbers +502 5555 0xxx (E.164: +50255550xxx)."""

    def __init__(self, start: int = 100) -> None:
        self.next = start

    def take(self) -> str:
        if self.next > 999:
            raise RuntimeError("ran out of fictitious numbers")
        number = f"+50255550{self.next:03d}"
        self.next += 1
        return number


# ---------------------------------------------------------------------------------------
# Hand-written network content
# ---------------------------------------------------------------------------------------

# fmt: off
# key, name, alternate_name, description, legal_status, year_incorporated, slug
ORGS: list[tuple[str, str, str | None, str, str | None, int | None, str]] = [
    ("pgn", "Procuraduría General de la Nación", "PGN",
     "Representa legalmente a niñas, niños y adolescentes víctimas y coordina su rescate, "
     "abrigo y reunificación familiar.", "Entidad pública", None, "pgn"),
    ("mp", "Ministerio Público", "MP",
     "Recibe denuncias, investiga y ejerce la acción penal por trata de personas y delitos "
     "conexos; atiende a víctimas mediante sus oficinas de atención.", "Entidad pública", None,
     "mp"),
    ("svet", "Secretaría contra la Violencia Sexual, Explotación y Trata de Personas", "SVET",
     "Ente rector de la prevención y atención de la trata; administra albergues temporales "
     "especializados y coordina comisiones departamentales.", "Entidad pública", None, "svet"),
    ("pnc", "Policía Nacional Civil", "PNC",
     "Recibe denuncias las 24 horas, brinda auxilio inmediato e investiga junto al Ministerio "
     "Público.", "Entidad pública", None, "pnc"),
    ("oj", "Organismo Judicial", "OJ",
     "Juzgados de paz, de niñez y adolescencia y juzgados especializados que dictan medidas de "
     "protección y juzgan los delitos de trata.", "Entidad pública", None, "oj"),
    ("inacif", "Instituto Nacional de Ciencias Forenses", "INACIF",
     "Realiza evaluaciones médico-legales y psicológicas forenses a solicitud del Ministerio "
     "Público o de un juzgado.", "Entidad pública", None, "inacif"),
    ("mspas", "Ministerio de Salud Pública y Asistencia Social", "MSPAS",
     "Red de hospitales, centros de salud y centros de atención permanente con atención a "
     "víctimas de violencia sexual.", "Entidad pública", None, "mspas"),
    ("igm", "Instituto Guatemalteco de Migración", "IGM",
     "Regulariza la permanencia de personas extranjeras víctimas de trata y recibe a personas "
     "guatemaltecas retornadas.", "Entidad pública", None, "igm"),
    ("sbs", "Secretaría de Bienestar Social de la Presidencia", "SBS",
     "Administra hogares temporales de protección para niñez y adolescencia por orden "
     "judicial.", "Entidad pública", None, "sbs"),
    ("demi", "Defensoría de la Mujer Indígena", "DEMI",
     "Atención jurídica, social y psicológica a mujeres indígenas en su idioma materno.",
     "Entidad pública", None, "demi"),
    ("pdh", "Procuraduría de los Derechos Humanos", "PDH",
     "Recibe denuncias de violaciones de derechos humanos y acompaña a víctimas y personas "
     "migrantes.", "Entidad pública", None, "pdh"),
    ("mintrab", "Ministerio de Trabajo y Previsión Social", "MINTRAB",
     "Verifica ofertas de empleo y agencias de reclutamiento y ofrece intermediación laboral.",
     "Entidad pública", None, "mintrab"),
    ("intecap", "Instituto Técnico de Capacitación y Productividad", "INTECAP",
     "Formación técnica y certificación de competencias laborales.", "Entidad pública", None,
     "intecap"),
    ("conalfa", "Comité Nacional de Alfabetización", "CONALFA",
     "Programas de alfabetización en español e idiomas mayas para jóvenes y personas adultas.",
     "Entidad pública", None, "conalfa"),
    ("muni_xela", "Municipalidad de Quetzaltenango", None,
     "Gobierno municipal; su Dirección Municipal de la Mujer orienta y refiere casos.",
     "Gobierno municipal", None, "muni-quetzaltenango"),
    ("muni_sfa", "Municipalidad de San Francisco El Alto", None,
     "Gobierno municipal; su oficina de protección de la niñez previene y refiere casos.",
     "Gobierno municipal", None, "muni-san-francisco-el-alto"),
    ("refugio", "Asociación Refugio de la Esperanza", "Refugio",
     "Organización de mujeres que gestiona casas refugio y acompañamiento psicosocial y legal a "
     "sobrevivientes de trata y violencia.", "Asociación civil sin fines de lucro", 2004,
     "refugio-esperanza"),
    ("alas", "Fundación Casa Alas", None,
     "Hogar de protección y programa educativo para adolescentes sobrevivientes de trata.",
     "Fundación", 2011, "casa-alas"),
    ("arcoiris", "Colectivo Arcoíris del Altiplano", "Arcoíris",
     "Colectivo LGBTIQ+ con centro comunitario, casa refugio y línea de apoyo nocturna.",
     "Asociación civil sin fines de lucro", 2015, "arcoiris-altiplano"),
    ("ixoqib", "Asociación de Mujeres Mayas Ixoq'ib'", "Ixoq'ib'",
     "Organización de mujeres mayas k'iche' que forma defensoras comunitarias y acompaña a "
     "sobrevivientes con pertinencia cultural.", "Asociación civil sin fines de lucro", 1998,
     "ixoqib"),
    ("interpretes", "Red de Intérpretes Comunitarios Mayas", None,
     "Red de intérpretes comunitarios que acompaña a víctimas ante instituciones de justicia, "
     "salud y protección.", "Asociación civil sin fines de lucro", 2013, "interpretes-mayas"),
    ("casa_migrante", "Casa del Migrante del Altiplano", None,
     "Albergue humanitario y orientación jurídica para personas migrantes, solicitantes de "
     "refugio y personas retornadas.", "Asociación civil sin fines de lucro", 1995,
     "casa-migrante"),
    ("bufete", "Bufete Popular Universitario de Occidente", None,
     "Clínica jurídica universitaria que ofrece asistencia legal gratuita.",
     "Unidad académica universitaria", 1978, "bufete-popular"),
    ("qanil", "Centro de Salud Mental Comunitaria Q'anil", "Q'anil",
     "Atención psicosocial comunitaria en el norte de Huehuetenango, en idiomas mayas.",
     "Asociación civil sin fines de lucro", 2009, "qanil"),
    ("santa_marta", "Asociación Hogar Santa Marta", None,
     "Hogar de orientación religiosa para mujeres adultas, de mediana estancia.",
     "Asociación religiosa", 1989, "hogar-santa-marta"),
    ("semillas", "Programa Semillas de Reintegración", "Semillas",
     "Programa de reintegración económica: capital semilla, emprendimiento y becas.",
     "Fundación", 2016, "semillas"),
    ("voces", "Asociación Voces del Altiplano", "Voces",
     "Prevención comunitaria de la trata: radio, escuelas y comités de defensores.",
     "Asociación civil sin fines de lucro", 2007, "voces-altiplano"),
    ("ai_toto", "Alcaldía Indígena de Totonicapán", "48 Cantones",
     "Autoridad indígena de los cantones de Totonicapán; orienta, media y refiere casos según "
     "el derecho maya.", "Autoridad indígena", None, "alcaldia-indigena-totonicapan"),
    ("ai_sol", "Alcaldía Indígena de Sololá", None,
     "Autoridad indígena kaqchikel de Sololá.", "Autoridad indígena", None,
     "alcaldia-indigena-solola"),
    ("ai_nebaj", "Alcaldía Indígena Ixil de Nebaj", None,
     "Autoridad ancestral ixil de Nebaj.", "Autoridad indígena", None,
     "alcaldia-indigena-nebaj"),
    ("ai_santiago", "Autoridad Ancestral Tz'utujil de Santiago Atitlán", None,
     "Autoridad ancestral tz'utujil de Santiago Atitlán.", "Autoridad indígena", None,
     "autoridad-tzutujil"),
    ("ai_todos", "Autoridades Ancestrales Mam de Todos Santos Cuchumatán", None,
     "Autoridades ancestrales mam de Todos Santos Cuchumatán.", "Autoridad indígena", None,
     "autoridades-mam-todos-santos"),
    ("red", "Red de Derivación de Atención a Víctimas del Altiplano Occidental",
     "Red de Derivación",
     "Red interinstitucional que reúne a Estado, sociedad civil y autoridades indígenas para "
     "referir casos de forma segura.", "Red interinstitucional", 2010, "red-derivacion"),
    ("coalicion", "Coalición Nacional contra la Trata", None,
     "Coalición de organizaciones de sociedad civil que coordina incidencia y protocolos.",
     "Red de organizaciones", 2008, "coalicion"),
    ("contigo", "Fundación Contigo", None,
     "Fundación que opera una línea de ayuda nacional 24 horas y un chat juvenil.",
     "Fundación", 2012, "contigo"),
    ("ixchel", "Clínicas de Salud Sexual y Reproductiva Ixchel", "Ixchel",
     "Clínicas de salud sexual y reproductiva con atención a sobrevivientes de violencia.",
     "Asociación civil sin fines de lucro", 1992, "ixchel"),
    ("nuevo_camino", "Fundación Nuevo Camino", None,
     "Albergue para hombres adultos sobrevivientes de trata con fines de explotación laboral.",
     "Fundación", 2018, "nuevo-camino"),
]

# fmt: on


@dataclass
class Loc:
    key: str
    org: str
    name: str
    muni: str
    visibility: str = "public"
    town: str | None = None
    langs: list[str] | None = None
    desc: str | None = None
    radius: float = 700.0
    access: str = "ramp"


L = Loc
# fmt: off
LOCATIONS: list[Loc] = [
    # PGN
    L("pgn_gua", "pgn", "PGN – Procuraduría de la Niñez y la Adolescencia, sede central", "0101",
      langs=["spa", "eng"]),
    L("pgn_xela", "pgn", "Procuraduría General de la Nación – Delegación Quetzaltenango", "0901"),
    L("pgn_huehue", "pgn", "Procuraduría General de la Nación – Delegación Huehuetenango", "1301"),
    L("pgn_sm", "pgn", "Procuraduría General de la Nación – Delegación San Marcos", "1201"),
    L("pgn_qui", "pgn", "Procuraduría General de la Nación – Delegación Quiché", "1401"),
    # MP
    L("mp_fetp", "mp", "Ministerio Público – Fiscalía contra la Trata de Personas", "0101",
      langs=["spa", "eng"]),
    L("mp_xela", "mp", "Ministerio Público – Fiscalía Distrital de Quetzaltenango", "0901"),
    L("mp_mai_xela", "mp", "Ministerio Público – Modelo de Atención Integral, Quetzaltenango",
      "0901", desc="Sede de atención integral 24 horas: fiscalía, clínica forense y psicología "
      "en un mismo lugar."),
    L("mp_coatepeque", "mp", "Ministerio Público – Fiscalía Distrital de Coatepeque", "0920",
      langs=["spa", "mam"]),
    L("mp_huehue", "mp", "Ministerio Público – Fiscalía Distrital de Huehuetenango", "1301"),
    L("mp_sm", "mp", "Ministerio Público – Fiscalía Distrital de San Marcos", "1201"),
    L("mp_qui", "mp", "Ministerio Público – Fiscalía Distrital de Quiché", "1401"),
    L("mp_nebaj", "mp", "Ministerio Público – Fiscalía Municipal de Nebaj", "1413",
      langs=["spa", "ixl"]),
    L("mp_sol", "mp", "Ministerio Público – Fiscalía Distrital de Sololá", "0701"),
    # SVET
    L("svet_gua", "svet", "SVET – Oficinas centrales", "0101"),
    L("svet_xela", "svet", "SVET – Delegación regional de Occidente", "0901"),
    L("svet_huehue", "svet", "SVET – Delegación Huehuetenango", "1301"),
    L("svet_albergue_occ", "svet", "SVET – Albergue temporal especializado de Occidente", "0914",
      visibility="confidential", langs=["spa", "quc", "mam"]),
    L("svet_albergue_metro", "svet", "SVET – Albergue temporal especializado Metropolitano",
      "0101", visibility="confidential", langs=["spa", "eng"]),
    # PNC
    L("pnc_xela", "pnc", "Policía Nacional Civil – Comisaría Quetzaltenango", "0901"),
    L("pnc_huehue", "pnc", "Policía Nacional Civil – Comisaría Huehuetenango", "1301"),
    L("pnc_toto", "pnc", "Policía Nacional Civil – Comisaría Totonicapán", "0801"),
    L("pnc_sol", "pnc", "Policía Nacional Civil – Comisaría Sololá", "0701"),
    L("pnc_mesilla", "pnc", "Policía Nacional Civil – Subestación La Mesilla", "1312",
      desc="Subestación en el paso fronterizo de La Mesilla (La Democracia)."),
    L("pnc_deic", "pnc", "Policía Nacional Civil – DEIC, Sección contra la Trata de Personas",
      "0101"),
    # OJ
    L("oj_jp_xela", "oj", "Juzgado de Paz Penal de Turno, Quetzaltenango", "0901"),
    L("oj_jp_momos", "oj", "Juzgado de Paz de Momostenango", "0805"),
    L("oj_jp_soloma", "oj", "Juzgado de Paz de Soloma", "1308", langs=["spa", "kjb"]),
    L("oj_jp_chajul", "oj", "Juzgado de Paz de Chajul", "1405", langs=["spa", "ixl"]),
    L("oj_ninez_xela", "oj",
      "Juzgado de Primera Instancia de la Niñez y la Adolescencia, Quetzaltenango", "0901"),
    L("oj_ninez_huehue", "oj",
      "Juzgado de Primera Instancia de la Niñez y la Adolescencia, Huehuetenango", "1301"),
    L("oj_fem_huehue", "oj",
      "Juzgado Especializado de Femicidio y Violencia contra la Mujer, Huehuetenango", "1301"),
    L("oj_fem_gua", "oj",
      "Juzgado Especializado de Violencia Sexual, Explotación y Trata de Personas", "0101"),
    # INACIF
    L("inacif_xela", "inacif", "INACIF – Sede pericial Quetzaltenango", "0901"),
    L("inacif_huehue", "inacif", "INACIF – Sede pericial Huehuetenango", "1301"),
    L("inacif_qui", "inacif", "INACIF – Sede pericial Santa Cruz del Quiché", "1401"),
    L("inacif_gua", "inacif", "INACIF – Sede central", "0101"),
    # MSPAS
    L("hro_xela", "mspas", "Hospital Regional de Occidente", "0901", radius=1500),
    L("hosp_huehue", "mspas", "Hospital Nacional de Huehuetenango", "1301"),
    L("hosp_qui", "mspas", "Hospital Nacional de Santa Cruz del Quiché", "1401"),
    L("hosp_sm", "mspas", "Hospital Nacional de San Marcos", "1201"),
    L("cs_ixcan", "mspas", "Centro de Atención Permanente de Playa Grande, Ixcán", "1420",
      town="Playa Grande", langs=["spa", "kek", "quc"]),
    L("cs_toto", "mspas", "Centro de Salud de Totonicapán", "0801"),
    L("cs_sanmateo", "mspas", "Centro de Salud de San Mateo Ixtatán", "1318",
      langs=["spa", "cac"]),
    L("cs_jacal", "mspas", "Centro de Salud de Jacaltenango", "1307", langs=["spa", "jac"]),
    L("cs_santiago", "mspas", "Centro de Salud de Santiago Atitlán", "0719",
      langs=["spa", "tzj"]),
    # IGM
    L("igm_gua", "igm", "IGM – Centro de Recepción de Personas Retornadas", "0101",
      langs=["spa", "eng"]),
    L("igm_tecun", "igm", "IGM – Delegación Tecún Umán", "1217", langs=["spa", "mam", "eng"]),
    L("igm_mesilla", "igm", "IGM – Puesto fronterizo La Mesilla", "1312",
      langs=["spa", "mam", "eng"]),
    # SBS
    L("sbs_hogar_ninez", "sbs", "SBS – Hogar temporal de protección para la niñez de Occidente",
      "0903", visibility="confidential"),
    L("sbs_hogar_adol", "sbs",
      "SBS – Hogar temporal de protección para adolescentes, Huehuetenango", "1302",
      visibility="confidential"),
    L("sbs_xela", "sbs", "SBS – Sede regional de Occidente", "0901"),
    # DEMI
    L("demi_xela", "demi", "DEMI – Sede regional Quetzaltenango", "0901"),
    L("demi_toto", "demi", "DEMI – Sede regional Totonicapán", "0801"),
    L("demi_qui", "demi", "DEMI – Sede regional Quiché", "1401", langs=["spa", "quc", "ixl"]),
    L("demi_sol", "demi", "DEMI – Sede regional Sololá", "0701", langs=["spa", "cak", "tzj"]),
    L("demi_huehue", "demi", "DEMI – Sede regional Huehuetenango", "1301",
      langs=["spa", "mam", "kjb"]),
    # PDH
    L("pdh_xela", "pdh", "PDH – Auxiliatura departamental de Quetzaltenango", "0901"),
    L("pdh_sm", "pdh", "PDH – Auxiliatura departamental de San Marcos", "1201"),
    L("pdh_malacatan", "pdh", "PDH – Auxiliatura municipal de Malacatán", "1215",
      langs=["spa", "mam", "eng"]),
    # MINTRAB
    L("mintrab_xela", "mintrab", "MINTRAB – Delegación departamental de Quetzaltenango", "0901"),
    L("mintrab_huehue", "mintrab", "MINTRAB – Delegación departamental de Huehuetenango", "1301"),
    L("mintrab_sm", "mintrab", "MINTRAB – Delegación departamental de San Marcos", "1201"),
    # INTECAP, CONALFA
    L("intecap_xela", "intecap", "INTECAP – Centro de capacitación Quetzaltenango", "0901",
      radius=1500),
    L("intecap_huehue", "intecap", "INTECAP – Centro de capacitación Huehuetenango", "1301"),
    L("conalfa_qui", "conalfa", "CONALFA – Coordinación departamental de Quiché", "1401"),
    L("conalfa_comitancillo", "conalfa", "CONALFA – Centro de alfabetización de Comitancillo",
      "1204", access="steps"),
    # Municipal offices
    L("dmm_xela", "muni_xela", "Dirección Municipal de la Mujer de Quetzaltenango", "0901"),
    L("ompna_sfa", "muni_sfa",
      "Oficina Municipal de Protección de la Niñez y Adolescencia de San Francisco El Alto",
      "0803"),
    # NGOs
    L("ref_oficina", "refugio", "Asociación Refugio de la Esperanza – Oficina de atención", "0901"),
    L("ref_casa_xela", "refugio", "Casa refugio para mujeres de Occidente", "0902",
      visibility="confidential"),
    L("ref_casa_huehue", "refugio", "Casa refugio para mujeres de Huehuetenango", "1301",
      visibility="confidential", langs=["spa", "mam", "kjb"]),
    L("ref_transicion", "refugio", "Casa de transición Refugio de la Esperanza", "0923",
      visibility="restricted"),
    L("alas_hogar", "alas", "Hogar Casa Alas para adolescentes", "0701", visibility="confidential",
      langs=["spa", "cak", "quc", "tzj"]),
    L("alas_centro", "alas", "Centro educativo Casa Alas", "0701", langs=["spa", "cak"]),
    L("arco_centro", "arcoiris", "Centro comunitario Arcoíris", "0901", radius=1200),
    L("arco_casa", "arcoiris", "Casa refugio Arcoíris para personas LGBTIQ+", "0901",
      visibility="confidential", radius=1500),
    L("ixo_toto", "ixoqib", "Ixoq'ib' – Sede Totonicapán", "0801", langs=["spa", "quc"]),
    L("ixo_momos", "ixoqib", "Ixoq'ib' – Oficina Momostenango", "0805", langs=["quc", "spa"],
      access="steps"),
    L("ixo_chichi", "ixoqib", "Ixoq'ib' – Oficina Chichicastenango", "1406", langs=["quc", "spa"]),
    L("int_xela", "interpretes", "Red de Intérpretes – Coordinación Quetzaltenango", "0901",
      langs=["spa", "quc", "mam", "kek"]),
    L("int_huehue", "interpretes", "Red de Intérpretes – Coordinación Huehuetenango", "1301",
      langs=["spa", "mam", "kjb", "knj", "jac", "cac"]),
    L("int_nebaj", "interpretes", "Red de Intérpretes – Coordinación Región Ixil", "1413",
      langs=["spa", "ixl", "quc"]),
    L("cm_tecun", "casa_migrante", "Casa del Migrante – Tecún Umán", "1217",
      visibility="restricted", langs=["spa", "eng", "mam"]),
    L("cm_huehue", "casa_migrante", "Casa del Migrante – Huehuetenango", "1301",
      visibility="restricted", langs=["spa", "eng", "mam"]),
    L("bufete_xela", "bufete", "Bufete Popular Universitario – Sede Quetzaltenango", "0901"),
    L("bufete_sm", "bufete", "Bufete Popular Universitario – Sede San Marcos", "1201"),
    L("qanil_huehue", "qanil", "Q'anil – Centro comunitario Huehuetenango", "1301",
      langs=["spa", "mam", "kjb"]),
    L("qanil_soloma", "qanil", "Q'anil – Centro comunitario Soloma", "1308",
      langs=["kjb", "spa", "knj"]),
    L("qanil_barillas", "qanil", "Q'anil – Centro comunitario Barillas", "1326",
      langs=["kjb", "spa", "cac"], access="steps"),
    L("santa_marta_hogar", "santa_marta", "Hogar Santa Marta", "1201", visibility="restricted"),
    L("sem_sm", "semillas", "Semillas – Oficina San Pedro Sacatepéquez", "1202"),
    L("sem_huehue", "semillas", "Semillas – Oficina Huehuetenango", "1301"),
    L("sem_qui", "semillas", "Semillas – Oficina Santa Cruz del Quiché", "1401"),
    L("voces_nebaj", "voces", "Voces del Altiplano – Radio comunitaria Nebaj", "1413",
      langs=["ixl", "spa"]),
    L("voces_ixcan", "voces", "Voces del Altiplano – Oficina Ixcán", "1420",
      langs=["kek", "spa", "quc", "mam"]),
    L("voces_tacana", "voces", "Voces del Altiplano – Oficina Tacaná", "1207", langs=["mam", "spa"],
      access="steps"),
    L("ai_toto_sede", "ai_toto", "Alcaldía Indígena de Totonicapán – Sede de los 48 Cantones",
      "0801", langs=["quc", "spa"]),
    L("ai_sol_sede", "ai_sol", "Alcaldía Indígena de Sololá – Sede", "0701", langs=["cak", "spa"]),
    L("ai_nebaj_sede", "ai_nebaj", "Alcaldía Indígena Ixil – Sede Nebaj", "1413",
      langs=["ixl", "spa"]),
    L("ai_santiago_sede", "ai_santiago", "Autoridad Ancestral Tz'utujil – Sede Santiago Atitlán",
      "0719", langs=["tzj", "spa"]),
    L("ai_todos_sede", "ai_todos", "Autoridades Ancestrales Mam – Sede Todos Santos", "1315",
      langs=["mam", "spa"], access="steps"),
    L("red_xela", "red", "Red de Derivación – Secretaría técnica Quetzaltenango", "0901"),
    L("red_huehue", "red", "Red de Derivación – Nodo Huehuetenango", "1301"),
    L("red_sm", "red", "Red de Derivación – Nodo San Marcos", "1201"),
    L("red_qui", "red", "Red de Derivación – Nodo Quiché", "1401"),
    L("coalicion_gua", "coalicion", "Coalición Nacional contra la Trata – Secretaría ejecutiva",
      "0101"),
    L("contigo_gua", "contigo", "Fundación Contigo – Centro de llamadas", "0101",
      visibility="restricted", langs=["spa", "eng", "quc", "mam", "kek", "cak"]),
    L("ixchel_xela", "ixchel", "Clínica Ixchel Quetzaltenango", "0901"),
    L("ixchel_pana", "ixchel", "Clínica Ixchel Panajachel", "0710",
      langs=["spa", "cak", "tzj", "eng"]),
    L("ixchel_chichi", "ixchel", "Clínica Ixchel Chichicastenango", "1406"),
    L("nuevo_camino_casa", "nuevo_camino", "Casa Nuevo Camino para hombres sobrevivientes", "0101",
      visibility="restricted", radius=3000),
]
# fmt: on

ACCESS: dict[str, list[dict[str, str]]] = {
    "ramp": [
        {
            "description": "Acceso para silla de ruedas",
            "details": "Entrada a nivel o con rampa; baño accesible en planta baja.",
        },
    ],
    "steps": [
        {
            "description": "Acceso con gradas",
            "details": "Entrada con gradas y sin rampa; el personal puede atender en el primer "
            "nivel o en visita domiciliar.",
        },
    ],
}


@dataclass
class Svc:
    key: str
    org: str
    name: str
    desc: str
    cats: list[str]
    locs: list[str]
    langs: list[str] | None = None
    interp: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    genders: list[str] | None = None
    trans_inclusive: bool = True
    affirming: bool = False
    children: bool = True
    minors_only: bool = False
    schedules: list[dict[str, str]] = field(default_factory=lambda: OFFICE)
    capacity: tuple[int, int, float] | None = None
    areas: list[dict[str, Any]] = field(default_factory=list)
    docs: list[dict[str, str]] = field(default_factory=lambda: NO_DOCS)
    cost: list[dict[str, Any]] = field(default_factory=lambda: FREE)
    assured: int | None = -1  # -1: take the next value from ASSURED_CYCLE
    alt: str | None = None
    with_url: bool = False


def dept_area(name: str, *codes: str) -> dict[str, Any]:
    return {"name": name, "department_codes": list(codes)}


def muni_area(name: str, description: str, *codes: str) -> dict[str, Any]:
    return {"name": name, "description": description, "municipality_codes": list(codes)}


NATIONAL = {"name": "Nacional", "country": "GT"}
HIGHLANDS = dept_area("Altiplano Occidental", *WESTERN_HIGHLANDS)
MINORS_DOCS = [
    {"document": "Orden de abrigo o medida de protección de juzgado, o referencia de la PGN"},
]
SHELTER_ADULT_DOCS = [
    {
        "document": "Referencia de una institución de la red (Ministerio Público, PGN, SVET u "
        "organización acreditada)"
    },
    {"document": "No se exige DPI para el ingreso"},
]

S = Svc
# fmt: off
SERVICES: list[Svc] = [
    # ---- PGN
    S("pgn_ninez", "pgn", "Representación legal de niñez y adolescencia víctima",
      "Abogadas y abogados de la PGN representan a niñas, niños y adolescentes víctimas de trata "
      "en el proceso penal y solicitan medidas de protección.",
      ["protection.legal_aid"], ["pgn_gua", "pgn_xela", "pgn_huehue", "pgn_sm", "pgn_qui"],
      min_age=0, max_age=17, minors_only=True,
      interp="Intérpretes de k'iche' y mam por medio de la red de intérpretes comunitarios."),
    S("pgn_reunificacion", "pgn", "Reunificación familiar de niñez migrante no acompañada",
      "Recepción de niñez migrante retornada, evaluación del entorno familiar y reunificación "
      "segura o abrigo temporal.",
      ["protection.repatriation"], ["pgn_gua", "pgn_huehue", "pgn_sm"],
      min_age=0, max_age=17, minors_only=True, schedules=H24, areas=[NATIONAL]),
    # ---- MP
    S("mp_denuncia", "mp", "Recepción de denuncias y persecución penal por trata",
      "Recepción de denuncias de trata de personas, explotación sexual y laboral, e "
      "investigación penal. Se puede denunciar sin abogado.",
      ["prosecution.prosecutors"],
      ["mp_fetp", "mp_xela", "mp_coatepeque", "mp_huehue", "mp_sm", "mp_qui", "mp_nebaj",
       "mp_sol"],
      interp="Intérpretes del Ministerio Público en k'iche', mam, kaqchikel e ixil; solicitar al "
             "llegar.", schedules=OFFICE_SAT),
    S("mp_oav", "mp", "Oficina de Atención a la Víctima",
      "Primera atención psicológica, orientación legal y referencia a la red de derivación para "
      "víctimas que denuncian.",
      ["protection.health.mental_psychosocial", "protection.legal_aid"],
      ["mp_xela", "mp_huehue", "mp_qui"], alt="OAV"),
    S("mp_mai", "mp", "Atención integral 24 horas a víctimas de violencia sexual y trata",
      "Denuncia, evaluación forense y atención psicológica en un mismo lugar, las 24 horas.",
      ["prosecution.prosecutors", "prosecution.forensic",
       "protection.health.mental_psychosocial"],
      ["mp_mai_xela"], schedules=H24, alt="MAI",
      interp="Intérprete de k'iche' y mam de turno."),
    S("mp_linea", "mp", "Línea de denuncia 24 horas del Ministerio Público",
      "Línea gratuita para denunciar trata de personas de forma anónima.",
      ["protection.hotline", "prosecution.prosecutors"], ["mp_fetp"], langs=["spa", "eng"],
      schedules=H24, areas=[NATIONAL], with_url=True),
    # ---- SVET
    S("svet_capacitacion", "svet", "Capacitación en identificación y derivación de víctimas",
      "Talleres para personal de salud, educación, municipalidades y autoridades indígenas sobre "
      "indicadores de trata y rutas de derivación.",
      ["prevention.training"], ["svet_gua", "svet_xela"],
      areas=[HIGHLANDS, dept_area("Guatemala", "01")]),
    S("svet_coord", "svet", "Secretaría de la Comisión Departamental contra la Trata",
      "Convoca y da seguimiento a las comisiones departamentales contra la violencia sexual, "
      "explotación y trata.",
      ["partnerships.coordination"], ["svet_xela", "svet_huehue"],
      areas=[dept_area("Quetzaltenango y Huehuetenango", "09", "13")]),
    S("svet_sensibilizacion", "svet", "Campaña escolar de prevención de la trata",
      "Charlas en institutos y escuelas sobre captación en línea y ofertas de empleo engañosas.",
      ["prevention.awareness"], ["svet_huehue"],
      areas=[dept_area("Huehuetenango", "13")]),
    S("svet_albergue_occ", "svet", "Albergue temporal especializado para adolescentes de Occidente",
      "Abrigo especializado para adolescentes víctimas de trata, con atención psicológica, "
      "educativa y legal. Ingreso por orden judicial.",
      ["protection.shelter.children_adolescents", "protection.shelter.emergency"],
      ["svet_albergue_occ"], min_age=12, max_age=17, minors_only=True, affirming=True,
      children=False, schedules=H24, capacity=(4, 20, 12), docs=MINORS_DOCS,
      areas=[HIGHLANDS]),
    S("svet_albergue_metro", "svet", "Albergue temporal especializado para niñas y adolescentes",
      "Abrigo para niñas y adolescentes mujeres víctimas de trata con fines de explotación "
      "sexual; admite a sus hijas e hijos pequeños.",
      ["protection.shelter.children_adolescents", "protection.shelter.long_term"],
      ["svet_albergue_metro"], min_age=12, max_age=17, minors_only=True,
      genders=["woman", "trans_woman"], affirming=False, children=True, schedules=H24,
      capacity=(2, 24, 3), docs=MINORS_DOCS, areas=[NATIONAL]),
    # ---- PNC
    S("pnc_denuncia", "pnc", "Recepción de denuncias y auxilio 24 horas",
      "Recepción de denuncias, auxilio inmediato y traslado a servicios de salud o albergue.",
      ["prosecution.police"],
      ["pnc_xela", "pnc_huehue", "pnc_toto", "pnc_sol", "pnc_mesilla"], schedules=H24),
    S("pnc_deic", "pnc", "Investigación criminal de trata de personas",
      "Unidad especializada que investiga redes de trata bajo la dirección del Ministerio "
      "Público.", ["prosecution.police"], ["pnc_deic"], areas=[NATIONAL]),
    S("pnc_linea", "pnc", "Línea de emergencia policial",
      "Línea de emergencias de la policía, atendida las 24 horas.",
      ["protection.hotline", "prosecution.police"], ["pnc_deic"], schedules=H24,
      areas=[NATIONAL]),
    # ---- OJ
    S("oj_paz", "oj", "Medidas de seguridad urgentes en juzgado de paz",
      "Dicta medidas de seguridad y protección urgentes y recibe denuncias cuando no hay fiscalía "
      "en el municipio.",
      ["prosecution.courts"], ["oj_jp_xela", "oj_jp_momos", "oj_jp_soloma", "oj_jp_chajul"],
      schedules=H24, interp="Personal bilingüe e intérpretes judiciales según el municipio."),
    S("oj_ninez", "oj", "Medidas de protección para niñez y adolescencia",
      "Audiencias de protección, órdenes de abrigo temporal y seguimiento de niñez víctima.",
      ["prosecution.courts"], ["oj_ninez_xela", "oj_ninez_huehue"],
      min_age=0, max_age=17, minors_only=True),
    S("oj_especializado", "oj",
      "Juzgamiento especializado de violencia sexual, explotación y trata",
      "Juzgados especializados con sala de declaración protegida (cámara Gesell) y "
      "acompañamiento a víctimas.",
      ["prosecution.courts"], ["oj_fem_huehue", "oj_fem_gua"],
      interp="Centro de interpretación judicial en idiomas mayas."),
    # ---- INACIF
    S("inacif_pericial", "inacif", "Evaluación médico-legal y psicológica forense",
      "Evaluaciones forenses con enfoque de víctima, a solicitud del Ministerio Público o de un "
      "juzgado.",
      ["prosecution.forensic"], ["inacif_xela", "inacif_huehue", "inacif_qui", "inacif_gua"],
      schedules=H24,
      docs=[{"document": "Solicitud del Ministerio Público o de un juzgado"}]),
    # ---- MSPAS
    S("mspas_urgencias", "mspas", "Emergencia médica 24 horas",
      "Atención de emergencia las 24 horas, sin exigir documento de identificación.",
      ["protection.health.medical"], ["hro_xela", "hosp_huehue", "hosp_qui", "cs_ixcan"],
      schedules=H24),
    S("mspas_violencia_sexual", "mspas", "Clínica de atención a víctimas de violencia sexual",
      "Kit de profilaxis post exposición en las primeras 72 horas, anticoncepción de emergencia, "
      "pruebas de ITS y VIH, y referencia a psicología.",
      ["protection.health.sexual_reproductive"], ["hro_xela", "hosp_huehue", "hosp_sm"],
      schedules=H24),
    S("mspas_salud_mental", "mspas", "Atención en salud mental",
      "Consulta de psicología y psiquiatría, grupos de apoyo.",
      ["protection.health.mental_psychosocial"], ["hro_xela", "cs_toto"], schedules=CLINIC),
    S("mspas_consulta", "mspas", "Consulta externa y atención primaria",
      "Consulta médica general, control prenatal y referencia a hospital.",
      ["protection.health.medical", "protection.health.sexual_reproductive"],
      ["cs_sanmateo", "cs_jacal", "cs_santiago", "cs_toto"], schedules=CLINIC),
    # ---- IGM
    S("igm_regularizacion", "igm", "Regularización migratoria de personas extranjeras víctimas",
      "Orientación migratoria, permiso de permanencia temporal y documentación para personas "
      "extranjeras víctimas de trata.",
      ["protection.migration"], ["igm_gua", "igm_tecun", "igm_mesilla"],
      langs=["spa", "eng"], areas=[NATIONAL]),
    S("igm_retorno", "igm", "Recepción y acompañamiento de personas retornadas",
      "Recepción de personas guatemaltecas retornadas, identificación de posibles víctimas y "
      "referencia.", ["protection.repatriation"], ["igm_gua", "igm_tecun"], schedules=H24),
    # ---- SBS
    S("sbs_ninez", "sbs", "Hogar temporal de protección para niñas y niños",
      "Abrigo temporal para niñas y niños de 0 a 11 años con orden judicial.",
      ["protection.shelter.children_adolescents"], ["sbs_hogar_ninez"],
      min_age=0, max_age=11, minors_only=True, children=False, schedules=H24,
      capacity=(5, 30, 20), docs=MINORS_DOCS, areas=[HIGHLANDS]),
    S("sbs_adolescentes", "sbs", "Hogar temporal de protección para adolescentes",
      "Abrigo temporal mixto para adolescentes de 12 a 17 años con orden judicial.",
      ["protection.shelter.children_adolescents", "protection.shelter.emergency"],
      ["sbs_hogar_adol"], min_age=12, max_age=17, minors_only=True, children=False,
      schedules=H24, capacity=(0, 16, 4), docs=MINORS_DOCS,
      areas=[dept_area("Huehuetenango y San Marcos", "13", "12")]),
    S("sbs_reintegracion", "sbs", "Programa de reintegración familiar y comunitaria",
      "Acompañamiento a adolescentes que egresan de hogares de protección: familia, escuela y "
      "proyecto de vida.",
      ["protection.repatriation", "protection.livelihoods"], ["sbs_xela"],
      min_age=12, max_age=17, minors_only=True, areas=[HIGHLANDS]),
    # ---- DEMI
    S("demi_atencion", "demi", "Atención jurídica, social y psicológica para mujeres indígenas",
      "Asesoría y acompañamiento legal, trabajo social y psicología en el idioma materno de cada "
      "mujer.",
      ["protection.legal_aid", "protection.health.mental_psychosocial"],
      ["demi_xela", "demi_toto", "demi_qui", "demi_sol", "demi_huehue"],
      genders=["woman", "trans_woman"],
      langs=["spa", "quc", "mam", "cak", "tzj", "ixl", "kjb"]),
    S("demi_interpretacion", "demi", "Acompañamiento con intérprete ante fiscalía y juzgados",
      "Intérpretes y acompañantes que explican cada paso del proceso en idioma maya.",
      ["protection.interpretation"], ["demi_toto", "demi_huehue"],
      genders=["woman", "trans_woman"], langs=["quc", "mam", "kjb", "spa"],
      interp="K'iche', mam y q'anjob'al."),
    # ---- PDH
    S("pdh_denuncia", "pdh", "Denuncias de derechos humanos y acompañamiento a víctimas",
      "Recibe denuncias contra instituciones, verifica la atención a víctimas y acompaña casos.",
      ["protection.legal_aid"], ["pdh_xela", "pdh_sm"]),
    S("pdh_movilidad", "pdh", "Defensoría de las Personas Migrantes",
      "Orientación a personas migrantes y retornadas sobre sus derechos y riesgos de trata en la "
      "ruta.", ["protection.migration", "prevention.safe_migration"], ["pdh_malacatan"],
      langs=["spa", "eng", "mam"]),
    # ---- MINTRAB
    S("mintrab_ofertas", "mintrab", "Verificación de ofertas de empleo y agencias de reclutamiento",
      "Antes de aceptar un trabajo, verifique si la agencia o la oferta está registrada.",
      ["prevention.safe_migration"], ["mintrab_huehue", "mintrab_sm"]),
    S("mintrab_empleo", "mintrab", "Servicio Nacional de Empleo – bolsa de trabajo",
      "Intermediación laboral y orientación vocacional.", ["protection.livelihoods"],
      ["mintrab_xela"], min_age=18),
    # ---- INTECAP, CONALFA
    S("intecap_formacion", "intecap", "Formación técnica gratuita para sobrevivientes referidas",
      "Cursos de cocina, costura, computación y belleza con beca para personas referidas por la "
      "red.", ["protection.livelihoods", "protection.education"],
      ["intecap_xela", "intecap_huehue"], min_age=16, schedules=OFFICE_SAT,
      docs=[{"document": "Carta de referencia de una institución de la red"}]),
    S("conalfa_alfabetizacion", "conalfa", "Alfabetización en idioma materno y español",
      "Grupos de alfabetización y posalfabetización en k'iche', mam y español.",
      ["protection.education"], ["conalfa_qui", "conalfa_comitancillo"], min_age=15,
      langs=["quc", "mam", "spa"], schedules=COMMUNITY),
    # ---- Municipal
    S("dmm_orientacion", "muni_xela", "Orientación y referencia para mujeres",
      "Orientación, charlas comunitarias y referencia de mujeres en riesgo a la red.",
      ["prevention.awareness", "partnerships.networks"], ["dmm_xela"],
      genders=["woman", "trans_woman"]),
    S("ompna_prevencion", "muni_sfa", "Prevención y referencia de niñez en riesgo",
      "Identificación de niñez en riesgo en mercados y escuelas y referencia a la PGN.",
      ["prevention.community_defenders", "prevention.awareness"], ["ompna_sfa"],
      min_age=0, max_age=17, minors_only=True,
      areas=[muni_area("San Francisco El Alto", "Mercado y aldeas del municipio", "0803")]),
    # ---- Refugio de la Esperanza
    S("ref_albergue_xela", "refugio", "Albergue de emergencia para mujeres de Occidente",
      "Acogida inmediata para mujeres sobrevivientes de trata y violencia, con sus hijas e "
      "hijos. Espacio afirmativo para mujeres trans.",
      ["protection.shelter.emergency", "protection.shelter.women"], ["ref_casa_xela"],
      min_age=18, genders=["woman", "trans_woman"], affirming=True, children=True,
      schedules=H24, capacity=(3, 12, 6), docs=SHELTER_ADULT_DOCS,
      areas=[dept_area("Quetzaltenango, Totonicapán y San Marcos", "09", "08", "12")]),
    S("ref_albergue_huehue", "refugio", "Albergue de emergencia para mujeres de Huehuetenango",
      "Acogida inmediata para mujeres sobrevivientes de trata y violencia, con sus hijas e "
      "hijos.",
      ["protection.shelter.emergency", "protection.shelter.women"], ["ref_casa_huehue"],
      min_age=18, genders=["woman", "trans_woman"], affirming=True, children=True,
      schedules=H24, capacity=(2, 10, 120), docs=SHELTER_ADULT_DOCS,
      areas=[dept_area("Huehuetenango", "13")]),
    S("ref_transicion", "refugio", "Casa de transición y plan de vida",
      "Vivienda de mediana estancia (hasta 12 meses) con plan de vida, formación y búsqueda de "
      "empleo.",
      ["protection.shelter.long_term", "protection.shelter.women", "protection.livelihoods"],
      ["ref_transicion"], min_age=18, genders=["woman", "trans_woman"], affirming=True,
      children=True, capacity=(1, 6, 30), docs=SHELTER_ADULT_DOCS),
    S("ref_psico", "refugio", "Atención psicosocial individual y grupal",
      "Psicoterapia individual, grupos de autoayuda y acompañamiento a hijas e hijos.",
      ["protection.health.mental_psychosocial"],
      ["ref_oficina", "ref_casa_xela", "ref_casa_huehue"],
      genders=["woman", "trans_woman"], affirming=True),
    S("ref_legal", "refugio", "Asistencia legal y querella para sobrevivientes",
      "Abogadas que acompañan la denuncia, se constituyen como querellantes y gestionan la "
      "reparación digna.", ["protection.legal_aid"], ["ref_oficina"],
      genders=["woman", "trans_woman"], affirming=True, with_url=True),
    # ---- Casa Alas
    S("alas_hogar", "alas", "Hogar de protección para adolescentes mujeres",
      "Hogar de mediana estancia para adolescentes mujeres de 12 a 17 años sobrevivientes de "
      "trata; admite a madres adolescentes con sus bebés.",
      ["protection.shelter.children_adolescents", "protection.shelter.long_term"],
      ["alas_hogar"], min_age=12, max_age=17, minors_only=True,
      genders=["woman", "trans_woman"], affirming=True, children=True, schedules=H24,
      capacity=(2, 14, 48), docs=MINORS_DOCS, areas=[HIGHLANDS]),
    S("alas_educacion", "alas", "Educación acelerada y nivelación escolar",
      "Primaria y básicos acelerados, con certificación oficial, para adolescentes y jóvenes que "
      "dejaron la escuela.", ["protection.education"], ["alas_centro", "alas_hogar"],
      min_age=12, max_age=21, langs=["spa", "cak"]),
    S("alas_psico", "alas", "Acompañamiento psicosocial para adolescentes",
      "Terapia individual y grupal, arte y deporte.", ["protection.health.mental_psychosocial"],
      ["alas_centro"], min_age=12, max_age=21),
    # ---- Arcoíris
    S("arco_casa", "arcoiris", "Casa refugio para personas LGBTIQ+",
      "Alojamiento seguro y afirmativo para personas LGBTIQ+ adultas sobrevivientes de trata, "
      "explotación o violencia.",
      ["protection.shelter.lgbtiq", "protection.shelter.emergency"], ["arco_casa"],
      min_age=18, affirming=True, children=False, schedules=H24, capacity=(1, 8, 10),
      docs=[{"document": "Entrevista de ingreso por la línea pública; no se exige DPI"}],
      areas=[HIGHLANDS]),
    S("arco_linea", "arcoiris", "Línea de apoyo nocturna LGBTIQ+",
      "Escucha, contención y orientación por teléfono y mensajería durante la noche.",
      ["protection.hotline", "protection.health.mental_psychosocial"], ["arco_centro"],
      affirming=True, schedules=NIGHT, areas=[NATIONAL]),
    S("arco_salud", "arcoiris", "Salud sexual y prueba de VIH con enfoque afirmativo",
      "Pruebas rápidas de VIH y sífilis, consejería y acompañamiento a servicios de salud.",
      ["protection.health.sexual_reproductive"], ["arco_centro"], affirming=True,
      schedules=COMMUNITY),
    S("arco_psico", "arcoiris", "Atención psicológica afirmativa",
      "Psicoterapia individual para personas LGBTIQ+ y sus familias.",
      ["protection.health.mental_psychosocial"], ["arco_centro"], affirming=True,
      cost=[{"option": "Gratuito", "amount": 0, "currency": "GTQ"},
            {"option": "Aporte voluntario", "amount": 25, "currency": "GTQ"}]),
    # ---- Ixoq'ib'
    S("ixo_defensoras", "ixoqib", "Red de defensoras comunitarias contra la trata",
      "Mujeres de cada cantón formadas para reconocer señales de trata, acompañar a familias y "
      "referir casos.",
      ["prevention.community_defenders"], ["ixo_toto", "ixo_momos", "ixo_chichi"],
      langs=["quc", "spa"], schedules=COMMUNITY,
      areas=[muni_area("Totonicapán y Chichicastenango", "Cantones y aldeas", "0801", "0805",
                       "1406")]),
    S("ixo_psico", "ixoqib", "Acompañamiento psicosocial con pertinencia cultural",
      "Círculos de sanación y acompañamiento individual en k'iche' con guías espirituales.",
      ["protection.health.mental_psychosocial"], ["ixo_toto", "ixo_chichi"],
      genders=["woman"], trans_inclusive=False, langs=["quc", "spa"]),
    S("ixo_radio", "ixoqib", "Programa radial comunitario de prevención de la trata",
      "Programa semanal en k'iche' sobre engaños en ofertas de trabajo y derechos de la niñez.",
      ["prevention.awareness"], ["ixo_momos"], langs=["quc"],
      schedules=[sched("SA", "07:00", "08:00", "Sábados en la radio comunitaria")],
      areas=[dept_area("Totonicapán", "08")]),
    # ---- Intérpretes
    S("int_servicio", "interpretes", "Interpretación en idiomas mayas para víctimas",
      "Intérpretes presenciales o por teléfono para entrevistas, atención médica y audiencias.",
      ["protection.interpretation"], ["int_xela", "int_huehue", "int_nebaj"],
      langs=["spa", *MAYAN], schedules=H24,
      interp="K'iche', mam, q'eqchi', kaqchikel, ixil, q'anjob'al, tz'utujil, akateko, popti' "
             "y chuj; por teléfono cuando no hay intérprete presencial.",
      areas=[HIGHLANDS]),
    S("int_formacion", "interpretes", "Formación de intérpretes comunitarios",
      "Curso de interpretación en contextos de justicia y salud con enfoque de víctima.",
      ["prevention.training"], ["int_xela"], min_age=18),
    # ---- Casa del Migrante
    S("cm_albergue", "casa_migrante", "Albergue temporal para personas migrantes y retornadas",
      "Hospedaje de hasta tres noches, alimentación e identificación de posibles víctimas de "
      "trata.", ["protection.shelter.emergency"], ["cm_tecun", "cm_huehue"],
      min_age=18, children=True, schedules=H24, capacity=(18, 60, 2),
      docs=[{"document": "Ninguno"}], langs=["spa", "eng", "mam"]),
    S("cm_juridica", "casa_migrante", "Orientación jurídica migratoria y solicitud de refugio",
      "Asesoría sobre regularización, solicitud de refugio y derechos de las víctimas "
      "extranjeras.", ["protection.migration", "protection.legal_aid"],
      ["cm_tecun", "cm_huehue"], langs=["spa", "eng"]),
    S("cm_reunificacion", "casa_migrante", "Búsqueda de familiares y reunificación",
      "Llamadas gratuitas, búsqueda de familiares y apoyo para el retorno voluntario.",
      ["protection.repatriation"], ["cm_tecun"], langs=["spa", "eng", "mam"]),
    # ---- Bufete
    S("bufete_asistencia", "bufete", "Asistencia legal gratuita y representación de víctimas",
      "Estudiantes supervisados por abogados asesoran y representan a víctimas en procesos "
      "penales, de familia y de pensión alimenticia.",
      ["protection.legal_aid"], ["bufete_xela", "bufete_sm"],
      docs=[{"document": "DPI o cualquier documento de identificación, si lo tiene"}]),
    # ---- Q'anil
    S("qanil_psico", "qanil", "Atención psicosocial comunitaria",
      "Atención psicológica individual, familiar y grupal en q'anjob'al, mam y español.",
      ["protection.health.mental_psychosocial"], ["qanil_huehue", "qanil_soloma"],
      langs=["kjb", "mam", "spa"]),
    S("qanil_movil", "qanil", "Unidad móvil psicosocial del norte de Huehuetenango",
      "Equipo que visita aldeas con atención psicosocial e identificación de casos de trata.",
      ["protection.health.mental_psychosocial", "prevention.community_defenders"],
      ["qanil_soloma", "qanil_barillas"], langs=["kjb", "knj", "cac", "jac", "spa"],
      schedules=[sched("TU,WE,TH", "08:00", "15:00", "Rutas de martes a jueves")],
      areas=[muni_area("Norte de Huehuetenango", "Aldeas visitadas por la unidad móvil", "1308",
                       "1313", "1318", "1323", "1325", "1326", "1307")]),
    # ---- Santa Marta (NOT affirming, no children)
    S("santa_marta", "santa_marta", "Hogar de mediana estancia para mujeres adultas",
      "Hogar para mujeres adultas sin hijas ni hijos a cargo; horario y normas de convivencia "
      "de orientación religiosa.",
      ["protection.shelter.long_term", "protection.shelter.women"], ["santa_marta_hogar"],
      min_age=18, genders=["woman"], trans_inclusive=False, affirming=False, children=False,
      capacity=(3, 10, 50), docs=SHELTER_ADULT_DOCS),
    # ---- Semillas
    S("sem_capital", "semillas", "Capital semilla y acompañamiento a emprendimientos",
      "Capital semilla, asesoría de negocio y grupos de ahorro para sobrevivientes.",
      ["protection.livelihoods"], ["sem_sm", "sem_huehue", "sem_qui"], min_age=18,
      docs=[{"document": "Carta de referencia de una institución de la red"}]),
    S("sem_becas", "semillas", "Becas de estudio para sobrevivientes",
      "Becas para diversificado y universidad con tutoría.", ["protection.education"],
      ["sem_qui"], min_age=15, max_age=30),
    # ---- Voces
    S("voces_sensibilizacion", "voces", "Sensibilización comunitaria y radio",
      "Programas de radio, ferias y charlas en escuelas sobre captación y trata.",
      ["prevention.awareness"], ["voces_nebaj", "voces_ixcan"], langs=["ixl", "kek", "spa"],
      schedules=COMMUNITY, areas=[dept_area("Quiché", "14")]),
    S("voces_defensores", "voces", "Comités comunitarios de defensores",
      "Comités de jóvenes y personas adultas que vigilan ofertas engañosas y acompañan "
      "referencias.", ["prevention.community_defenders"], ["voces_ixcan", "voces_tacana"],
      langs=["kek", "mam", "spa"], schedules=COMMUNITY,
      areas=[muni_area("Ixcán y Tacaná", "Comunidades fronterizas", "1420", "1207")]),
    S("voces_migracion", "voces", "Información para migración segura",
      "Orientación sobre ofertas de trabajo en México y Estados Unidos, coyotes y derechos en la "
      "ruta.", ["prevention.safe_migration"], ["voces_tacana"], langs=["mam", "spa"]),
    # ---- Indigenous authorities
    S("ai_toto_justicia", "ai_toto",
      "Orientación, mediación y referencia por autoridades comunales",
      "Las autoridades de los cantones reciben casos, protegen a la familia y refieren a la "
      "fiscalía los delitos de trata.",
      ["prosecution.indigenous_justice"], ["ai_toto_sede"], langs=["quc", "spa"],
      schedules=OFFICE_SAT, areas=[muni_area("48 Cantones", "Cantones de Totonicapán", "0801")]),
    S("ai_toto_defensores", "ai_toto", "Alcaldes comunitarios como defensores contra la trata",
      "Alcaldes comunitarios capacitados para identificar y referir casos en cada cantón.",
      ["prevention.community_defenders"], ["ai_toto_sede"], langs=["quc", "spa"],
      schedules=COMMUNITY),
    S("ai_sol_justicia", "ai_sol", "Justicia propia y referencia de casos",
      "Orientación y acompañamiento de la autoridad indígena a familias afectadas.",
      ["prosecution.indigenous_justice"], ["ai_sol_sede"], langs=["cak", "spa"]),
    S("ai_nebaj_justicia", "ai_nebaj", "Justicia ixil y acompañamiento a víctimas",
      "Autoridades ancestrales que median, protegen y acompañan denuncias ante el MP.",
      ["prosecution.indigenous_justice"], ["ai_nebaj_sede"], langs=["ixl", "spa"]),
    S("ai_santiago_justicia", "ai_santiago", "Justicia tz'utujil y referencia de casos",
      "Orientación y referencia de casos por la autoridad ancestral.",
      ["prosecution.indigenous_justice"], ["ai_santiago_sede"], langs=["tzj", "spa"]),
    S("ai_todos_justicia", "ai_todos", "Justicia mam y referencia de casos",
      "Orientación, mediación y referencia de casos en el municipio.",
      ["prosecution.indigenous_justice"], ["ai_todos_sede"], langs=["mam", "spa"]),
    # ---- Networks
    S("red_derivacion", "red", "Red de derivación de atención a víctimas",
      "Reuniones mensuales, directorio compartido y protocolo de referencia segura entre "
      "instituciones.", ["partnerships.networks"], ["red_xela", "red_huehue", "red_sm", "red_qui"],
      areas=[HIGHLANDS], assured=400),
    S("coalicion_coordinacion", "coalicion",
      "Coordinación nacional de sociedad civil contra la trata",
      "Coordina protocolos, incidencia y formación entre organizaciones miembro.",
      ["partnerships.coordination", "partnerships.networks", "prevention.training"],
      ["coalicion_gua"], areas=[NATIONAL], with_url=True),
    # ---- Hotlines
    S("contigo_linea", "contigo", "Línea de ayuda contra la trata 24 horas",
      "Línea gratuita y confidencial: orientación, contención y referencia a servicios cercanos "
      "en español e idiomas mayas.",
      ["protection.hotline"], ["contigo_gua"],
      langs=["spa", "eng", "quc", "mam", "kek", "cak"], schedules=H24, affirming=True,
      areas=[NATIONAL],
      interp="Intérpretes por conferencia telefónica en otros idiomas mayas.", with_url=True),
    S("contigo_chat", "contigo", "Chat juvenil de orientación",
      "Chat por mensajería para adolescentes y jóvenes sobre riesgos en línea y ofertas "
      "engañosas.", ["protection.hotline", "prevention.awareness"], ["contigo_gua"],
      min_age=12, max_age=24, langs=["spa"], schedules=CHAT, affirming=True, areas=[NATIONAL]),
    # ---- Ixchel
    S("ixchel_ssr", "ixchel", "Salud sexual y reproductiva y atención a sobrevivientes",
      "Anticoncepción, control prenatal, pruebas de ITS y atención a sobrevivientes de violencia "
      "sexual.", ["protection.health.sexual_reproductive", "protection.health.medical"],
      ["ixchel_xela", "ixchel_pana", "ixchel_chichi"], affirming=True,
      cost=[{"option": "Gratuito para personas referidas por la red", "amount": 0,
             "currency": "GTQ"},
            {"option": "Consulta general", "amount": 50, "currency": "GTQ"}],
      schedules=OFFICE_SAT),
    # ---- Nuevo Camino
    S("nuevo_camino", "nuevo_camino", "Albergue para hombres sobrevivientes de explotación laboral",
      "Alojamiento, alimentación, atención psicológica y apoyo para el retorno o la reinserción "
      "laboral de hombres adultos.",
      ["protection.shelter.long_term", "protection.livelihoods"], ["nuevo_camino_casa"],
      min_age=18, genders=["man", "trans_man"], affirming=True, children=False,
      schedules=H24, capacity=(4, 12, 26), docs=SHELTER_ADULT_DOCS, areas=[NATIONAL]),
]
# fmt: on

ASSURED_CYCLE = [14, 45, 210, 90, 7, 365, 30, 120, 250, 60, None, 190]
STREETS = ["Calle", "Avenida"]


# ---------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------


def ejemplo(name: str) -> str:
    return name + SUFFIX


def address_line(key: str, code: str) -> str:
    digest = hashlib.sha256(f"address:{key}".encode()).digest()
    n, a, b = 1 + digest[0] % 12, 1 + digest[1] % 30, 10 + digest[2] % 80
    street = STREETS[digest[3] % 2]
    if code in ("0101", "0901", "1301"):
        zone = 1 + digest[4] % (16 if code == "0101" else 6)
        return f"{n}a. {street} {a}-{b}, Zona {zone}"
    return f"{n}a. {street} {a}-{b}, Barrio El Centro"


def build() -> dict[str, Any]:
    geo = Geo.load()
    placer = Placer(geo)
    phones = Phones()
    with TAXONOMY.open(encoding="utf-8") as fh:
        taxonomy_codes = {t["code"] for t in json.load(fh)["terms"]}

    orgs_out: list[dict[str, Any]] = []
    org_phone: dict[str, str] = {}
    org_slug: dict[str, str] = {}
    for key, name, alt, desc, legal, year, slug in ORGS:
        org_phone[key] = phones.take()
        org_slug[key] = slug
        orgs_out.append(
            {
                "id": sid("organization", key),
                "name": ejemplo(name),
                "alternate_name": alt,
                "description": desc,
                "email": f"{slug}@example.org",
                "website": f"https://example.org/{slug}",
                "legal_status": legal,
                "year_incorporated": year,
            }
        )

    locs_out: list[dict[str, Any]] = []
    loc_by_key: dict[str, Loc] = {}
    loc_langs: dict[str, list[str]] = {}
    for loc in LOCATIONS:
        if loc.key in loc_by_key:
            raise ValueError(f"duplicate location key {loc.key}")
        loc_by_key[loc.key] = loc
        dept = loc.muni[:2]
        lon, lat = placer.place(loc.key, loc.muni, loc.town, loc.radius)
        muni_name, dept_name = geo.names[loc.muni]
        langs = loc.langs or DEPT_LANGS[dept]
        loc_langs[loc.key] = langs
        if loc.visibility == "public":
            desc = loc.desc or f"Atención al público en {muni_name}, {dept_name}."
            intake = None
        else:
            if loc.visibility == "confidential":
                desc = loc.desc or (
                    "Ubicación confidencial por seguridad de las personas albergadas. El ingreso "
                    "se coordina solo por la línea pública de ingreso."
                )
            else:
                desc = loc.desc or (
                    "Ubicación de acceso restringido: la dirección se comparte con instituciones "
                    "de la red después de la referencia."
                )
            intake = {
                "phone": org_phone[loc.org],
                "description": "Línea de ingreso pública: evaluación de riesgo y coordinación "
                "del traslado seguro (ejemplo).",
            }
        locs_out.append(
            {
                "id": sid("location", loc.key),
                "organization_id": sid("organization", loc.org),
                "name": ejemplo(loc.name),
                "description": desc,
                "latitude": lat,
                "longitude": lon,
                "visibility": loc.visibility,
                "municipality_code": loc.muni,
                "department_code": dept,
                "address": {
                    "address_1": address_line(loc.key, loc.muni),
                    "city": muni_name,
                    "region": REGION[dept],
                    "state_province": dept_name,
                    "postal_code": None,
                    "country": "GT",
                },
                "phones": [
                    {
                        "number": phones.take(),
                        "type": "voice",
                        "description": "Recepción"
                        if loc.visibility == "public"
                        else "Uso interno de la red; no publicar",
                    }
                ],
                "intake_contact": intake,
                "accessibility": ACCESS[loc.access],
                "languages": langs,
            }
        )

    services_out: list[dict[str, Any]] = []
    sal_out: list[dict[str, Any]] = []
    assured_i = 0
    seen: set[str] = set()
    for svc in SERVICES:
        if svc.key in seen:
            raise ValueError(f"duplicate service key {svc.key}")
        seen.add(svc.key)
        for cat in svc.cats:
            if cat not in taxonomy_codes:
                raise ValueError(f"{svc.key}: unknown category {cat}")
        for lk in svc.locs:
            if loc_by_key[lk].org != svc.org:
                raise ValueError(f"{svc.key}: location {lk} belongs to another organization")
        if svc.langs is not None:
            langs = svc.langs
        else:
            langs = []
            for lk in svc.locs:
                langs += [lang for lang in loc_langs[lk] if lang not in langs]
        if svc.assured == -1:
            assured = ASSURED_CYCLE[assured_i % len(ASSURED_CYCLE)]
            assured_i += 1
        else:
            assured = svc.assured
        capacity = []
        if svc.capacity is not None:
            available, maximum, hours = svc.capacity
            capacity = [
                {
                    "unit": "bed",
                    "available": available,
                    "maximum": maximum,
                    "updated_hours_ago": hours,
                }
            ]
        slug = org_slug[svc.org]
        services_out.append(
            {
                "id": sid("service", svc.key),
                "organization_id": sid("organization", svc.org),
                "name": ejemplo(svc.name),
                "alternate_name": svc.alt,
                "description": svc.desc,
                "url": f"https://example.org/{slug}/{svc.key.replace('_', '-')}"
                if svc.with_url
                else None,
                "email": f"{svc.key.replace('_', '-')}@example.org" if svc.with_url else None,
                "status": "active",
                "categories": svc.cats,
                "languages": langs,
                "interpretation_services": svc.interp,
                "minimum_age": svc.min_age,
                "maximum_age": svc.max_age,
                "genders_served": svc.genders,
                "trans_inclusive": svc.trans_inclusive,
                "lgbtiq_affirming": svc.affirming,
                "accepts_accompanying_children": svc.children,
                "minors_only": svc.minors_only,
                "schedules": svc.schedules,
                "capacity": capacity,
                "service_areas": svc.areas,
                "phones": [
                    {
                        "number": phones.take(),
                        "type": "voice",
                        "description": "Línea 24 horas" if svc.schedules is H24 else "Información",
                    }
                ],
                "assured_days_ago": assured,
                "cost_options": svc.cost,
                "required_documents": svc.docs,
            }
        )
        for lk in svc.locs:
            sal_out.append(
                {
                    "id": sid("service_at_location", f"{svc.key}@{lk}"),
                    "service_id": sid("service", svc.key),
                    "location_id": sid("location", lk),
                    "description": None,
                }
            )

    return {
        "notice": NOTICE,
        "organizations": orgs_out,
        "locations": locs_out,
        "services": services_out,
        "service_at_locations": sal_out,
    }


def main() -> None:
    data = build()
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    OUTPUT.write_text(text, encoding="utf-8")
    print(
        f"wrote {OUTPUT.relative_to(REPO)}: {len(data['organizations'])} organizations, "
        f"{len(data['locations'])} locations, {len(data['services'])} services, "
        f"{len(data['service_at_locations'])} service_at_locations, "
        f"{len(text.encode()) // 1024} KB"
    )


if __name__ == "__main__":
    main()
