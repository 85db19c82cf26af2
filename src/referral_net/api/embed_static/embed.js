// referral-net's embeddable map (docs/embed.md). Plain ES module, no build step: MapLibre GL JS
// comes from web/package-lock.json, copied beside this file at set-up. Everything it loads comes
// from this service: the services (search as GeoJSON), the base map (our own vector tiles) and its
// labels (drawn by the browser from its own fonts; the style has no "glyphs" URL, so MapLibre
// renders every glyph locally). A deployment's optional third-party base map is named on the page.
import * as maplibregl from "./vendor/maplibre-gl.mjs";

const config = JSON.parse(document.getElementById("embed-config").textContent);
const t = config.strings;
const origin = window.location.origin + config.root;
const EXIT_PRESSES = 3;
const EXIT_WINDOW_MS = 2000;

// --- quick exit -------------------------------------------------------------------------------
// Replace the page (the whole tab when the browser lets a framed page do so) with a neutral site,
// with location.replace so that Back does not return here. The page is emptied first, so nothing
// stays on screen while the neutral site loads.
function quickExit(event) {
  if (event) event.preventDefault();
  document.body.replaceChildren();
  document.title = "";
  try {
    if (window.top !== window.self) {
      window.top.location.replace(config.exitUrl);
      return;
    }
  } catch (error) {
    // A cross-origin parent may refuse; then at least this frame leaves.
  }
  window.location.replace(config.exitUrl);
}

document.getElementById("quick-exit").addEventListener("click", quickExit);
let escapes = [];
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const now = Date.now();
  escapes = escapes.filter((at) => now - at < EXIT_WINDOW_MS);
  escapes.push(now);
  if (escapes.length >= EXIT_PRESSES) quickExit(event);
});

// --- colours ----------------------------------------------------------------------------------
const colourOf = (code) => config.colours[code] || config.otherColour;
for (const swatch of document.querySelectorAll(".swatch")) {
  swatch.style.setProperty("--c", colourOf(swatch.dataset.category));
}

// --- fetching services ------------------------------------------------------------------------
const headers = { Accept: "application/geo+json", "Accept-Language": config.lang };
if (config.key) headers["X-API-Key"] = config.key;

const form = document.getElementById("filters");

function currentFilters() {
  const data = new FormData(form);
  return {
    category: data.get("category") || null,
    department: data.get("department") || null,
    language: data.get("language") || null,
    open_now: data.get("open_now") === "true",
    lgbtiq_affirming: data.get("lgbtiq_affirming") === "true",
  };
}

function searchUrl(filters, page) {
  const params = new URLSearchParams();
  if (filters.department) params.set("department", filters.department);
  else params.set("bbox", config.bbox.join(","));
  if (filters.category) params.set("category", filters.category);
  if (filters.language) params.set("language", filters.language);
  if (filters.open_now) params.set("open_now", "true");
  if (filters.lgbtiq_affirming) params.set("lgbtiq_affirming", "true");
  params.set("limit", String(config.pageSize));
  params.set("page", String(page));
  params.set("f", "geojson");
  return `${origin}/api/v1/search?${params}`;
}

async function fetchServices(filters) {
  const features = [];
  let total = 0;
  for (let page = 1; features.length < config.maxMarkers; page += 1) {
    const response = await fetch(searchUrl(filters, page), { headers, credentials: "omit" });
    if (!response.ok) throw new Error(`search answered ${response.status}`);
    const collection = await response.json();
    features.push(...collection.features);
    total = collection.total_items;
    if (collection.features.length < config.pageSize) break;
  }
  return { features: features.slice(0, config.maxMarkers), total };
}

// --- the map ----------------------------------------------------------------------------------
function tiles(layer) {
  return [`${origin}/tiles/${layer}/{z}/{x}/{y}.mvt`];
}

// A cluster is coloured by the top-level category most of its services belong to.
const tops = config.topCategories;
const clusterProperties = Object.fromEntries(
  tops.map((code) => [`n_${code}`, ["+", ["case", ["==", ["get", "top_category"], code], 1, 0]]]),
);
function clusterColour() {
  const cases = ["case"];
  for (const code of tops) {
    const others = tops.filter((other) => other !== code);
    cases.push(
      ["all", ...others.map((other) => [">=", ["get", `n_${code}`], ["get", `n_${other}`]])],
      colourOf(code),
    );
  }
  cases.push(config.otherColour);
  return cases;
}

function pointColour() {
  const match = ["match", ["coalesce", ["get", "top_category"], ""]];
  for (const code of tops) match.push(code, colourOf(code));
  match.push(config.otherColour);
  return match;
}

function style() {
  const sources = {
    departments: { type: "vector", tiles: tiles("departments"), maxzoom: 12 },
    municipalities: { type: "vector", tiles: tiles("municipalities"), minzoom: 6, maxzoom: 12 },
    places: { type: "vector", tiles: tiles("places"), minzoom: 6, maxzoom: 12 },
    lakes: { type: "vector", tiles: tiles("lakes"), maxzoom: 12 },
    services: {
      type: "geojson",
      data: { type: "FeatureCollection", features: [] },
      cluster: true,
      clusterMaxZoom: 11,
      clusterRadius: 44,
      clusterProperties,
    },
  };
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#cfe0ea" } }];
  if (config.basemap) {
    sources.basemap = {
      type: "raster",
      tiles: [config.basemap.url],
      tileSize: 256,
      attribution: config.basemap.attribution || "",
    };
    layers.push({ id: "basemap", type: "raster", source: "basemap" });
  } else {
    layers.push({
      id: "land",
      type: "fill",
      source: "departments",
      "source-layer": "departments",
      paint: { "fill-color": "#f3efe6" },
    });
    // Water over the land it lies in (the department polygons include the lakes).
    layers.push({
      id: "lakes",
      type: "fill",
      source: "lakes",
      "source-layer": "lakes",
      paint: { "fill-color": "#cfe0ea", "fill-outline-color": "#9fbccc" },
    });
  }
  layers.push(
    {
      id: "municipality-lines",
      type: "line",
      source: "municipalities",
      "source-layer": "municipalities",
      minzoom: 8,
      paint: { "line-color": "#b9b09e", "line-width": 0.6 },
    },
    {
      id: "department-lines",
      type: "line",
      source: "departments",
      "source-layer": "departments",
      paint: { "line-color": "#7d7361", "line-width": ["interpolate", ["linear"], ["zoom"], 6, 0.8, 12, 2] },
    },
    {
      id: "place-labels",
      type: "symbol",
      source: "places",
      "source-layer": "places",
      minzoom: 8,
      layout: {
        "text-field": ["get", "name"],
        "text-font": ["sans-serif"],
        "text-size": ["interpolate", ["linear"], ["zoom"], 8, 11, 13, 14],
        "symbol-sort-key": ["-", 0, ["coalesce", ["get", "population"], 0]],
      },
      paint: { "text-color": "#3b3b3b", "text-halo-color": "#ffffff", "text-halo-width": 1.4 },
    },
    {
      id: "clusters",
      type: "circle",
      source: "services",
      filter: ["has", "point_count"],
      paint: {
        "circle-color": clusterColour(),
        "circle-radius": ["step", ["get", "point_count"], 14, 10, 18, 50, 24],
        "circle-stroke-color": "#ffffff",
        "circle-stroke-width": 2,
      },
    },
    {
      id: "cluster-counts",
      type: "symbol",
      source: "services",
      filter: ["has", "point_count"],
      layout: { "text-field": ["get", "point_count_abbreviated"], "text-font": ["sans-serif"], "text-size": 13 },
      paint: { "text-color": "#ffffff" },
    },
    {
      id: "services",
      type: "circle",
      source: "services",
      filter: ["!", ["has", "point_count"]],
      paint: {
        "circle-color": pointColour(),
        "circle-radius": 8,
        "circle-stroke-color": "#ffffff",
        "circle-stroke-width": 2,
      },
    },
  );
  return { version: 8, sources, layers };
}

const map = new maplibregl.Map({
  container: "map",
  style: style(),
  center: config.centre,
  zoom: config.zoom,
  minZoom: 5,
  maxZoom: 17,
  attributionControl: { compact: true },
  transformRequest: (url) => {
    // Our own tiles carry the partner key (its budget and audit); nobody else ever gets it.
    if (config.key && url.startsWith(origin)) return { url, headers: { "X-API-Key": config.key } };
    return { url };
  },
});
// The map object, for the browser tests (tests/embed_browser.py) and for debugging; a framing
// page on another origin cannot reach it.
window.referralNetMap = map;

// MapLibre's default handler prints the bare error object; name what failed instead.
map.on("error", (event) => console.error(`map: ${event.error?.message || event.error}`));
map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");

// --- popups and the list share one renderer -----------------------------------------------------
function addRow(list, label, value) {
  if (value === null || value === undefined || value === "") return;
  const term = document.createElement("dt");
  term.textContent = label;
  const detail = document.createElement("dd");
  if (value instanceof Node) detail.append(value);
  else detail.textContent = value;
  list.append(term, detail);
}

function phoneLinks(phones) {
  if (!phones || phones.length === 0) return null;
  const span = document.createElement("span");
  phones.forEach((number, index) => {
    if (index) span.append(", ");
    const link = document.createElement("a");
    link.href = `tel:${number.replace(/[^+\d]/g, "")}`;
    link.textContent = number;
    span.append(link);
  });
  return span;
}

function hoursText(properties) {
  const hours = properties.hours || [];
  if (hours.length === 0) return t.no_hours;
  return `${hours.join("; ")} (${properties.open_now ? t.open : t.closed})`;
}

function serviceDetails(properties, headingLevel) {
  const wrapper = document.createElement("article");
  wrapper.className = "service";
  const heading = document.createElement(`h${headingLevel}`);
  heading.textContent = properties.name;
  const marker = document.createElement("span");
  marker.className = "swatch";
  marker.setAttribute("aria-hidden", "true");
  marker.style.setProperty("--c", colourOf(properties.top_category));
  heading.prepend(marker);
  const details = document.createElement("dl");
  addRow(details, t.organization, properties.organization_name);
  addRow(details, t.categories, (properties.categories || []).join(", "));
  addRow(details, t.languages, (properties.languages || []).join(", "));
  addRow(details, t.phones, phoneLinks(properties.phones));
  addRow(details, t.hours, hoursText(properties));
  addRow(details, t.last_verified, properties.last_verified || t.never_verified);
  addRow(details, t.precision, properties.precision === "exact" ? t.exact : t.municipality);
  if (properties.precision !== "exact") addRow(details, t.intake, properties.intake_description);
  wrapper.append(heading, details);
  return wrapper;
}

let popup = null;
function showPopup(feature) {
  if (popup) popup.remove();
  popup = new maplibregl.Popup({ maxWidth: "320px", focusAfterOpen: true })
    .setLngLat(feature.geometry.coordinates)
    .setDOMContent(serviceDetails(feature.properties, 3))
    .addTo(map);
}

map.on("click", "services", (event) => showPopup(event.features[0]));
map.on("click", "clusters", async (event) => {
  const cluster = event.features[0];
  const zoom = await map.getSource("services").getClusterExpansionZoom(cluster.properties.cluster_id);
  map.easeTo({ center: cluster.geometry.coordinates, zoom });
});
for (const layer of ["services", "clusters"]) {
  map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
}

const results = document.getElementById("results");
const status = document.getElementById("status");

function renderList(features, total) {
  results.replaceChildren();
  for (const feature of features) {
    const item = document.createElement("li");
    item.append(serviceDetails(feature.properties, 3));
    const button = document.createElement("button");
    button.type = "button";
    button.className = "locate";
    button.textContent = t.show_on_map;
    button.addEventListener("click", () => {
      map.jumpTo({ center: feature.geometry.coordinates, zoom: Math.max(map.getZoom(), 13) });
      showPopup(feature);
      document.getElementById("map").scrollIntoView({ block: "nearest" });
    });
    item.append(button);
    results.append(item);
  }
  let message;
  if (features.length === 0) message = t.none;
  else if (features.length === 1) message = t.count_one;
  else message = t.count_many.replace("{n}", String(features.length));
  if (total > features.length) message += ` ${t.count_capped.replace("{n}", String(features.length))}`;
  status.textContent = message;
}

let generation = 0;
async function refresh() {
  const mine = (generation += 1);
  const filters = currentFilters();
  status.textContent = t.loading;
  try {
    const { features, total } = await fetchServices(filters);
    if (mine !== generation) return; // a newer filter change won
    const ready = () => map.getSource("services").setData({ type: "FeatureCollection", features });
    if (map.isStyleLoaded()) ready();
    else map.once("load", ready);
    if (popup) popup.remove();
    renderList(features, total);
    document.body.dispatchEvent(new CustomEvent("services-loaded", { detail: features }));
    document.body.dataset.loaded = String(mine);
  } catch (error) {
    if (mine !== generation) return;
    results.replaceChildren();
    status.textContent = t.error;
    document.body.dataset.loaded = "error";
  }
}

// The URL follows the filters without adding history entries (Back must never re-open a
// filtered view after a quick exit, and the page stays shareable).
function rememberFilters() {
  const params = new URLSearchParams(window.location.search);
  for (const [name, value] of Object.entries(currentFilters())) {
    if (value) params.set(name, value === true ? "true" : value);
    else params.delete(name);
  }
  window.history.replaceState(null, "", `${window.location.pathname}?${params}`);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  rememberFilters();
  refresh();
});
form.addEventListener("change", () => {
  rememberFilters();
  refresh();
});

let fitted = false;
document.body.addEventListener("services-loaded", (event) => {
  // A map opened on a department (and with no centre of its own) frames its services once.
  const features = event.detail;
  if (fitted || !config.department || config.centreGiven || features.length === 0) return;
  fitted = true;
  const bounds = new maplibregl.LngLatBounds();
  for (const feature of features) bounds.extend(feature.geometry.coordinates);
  map.fitBounds(bounds, { padding: 40, maxZoom: 12, duration: 0 });
});
refresh();
