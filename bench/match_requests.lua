-- wrk script for POST /api/v1/match (or GET /api/v1/search for the side-by-side figure).
-- BENCH_NEEDS: 3 or 6 (match), or 0 for the search request; BENCH_TOKEN: a caseworker token.
local needs = tonumber(os.getenv("BENCH_NEEDS") or "3")
local token = os.getenv("BENCH_TOKEN") or ""
local codes = {
  '{"code": "protection.shelter", "urgency": "emergency"}',
  '{"code": "protection.health.medical", "urgency": "soon"}',
  '{"code": "protection.legal_aid"}',
  '{"code": "protection.health.mental_psychosocial", "urgency": "soon"}',
  '{"code": "protection.migration"}',
  '{"code": "protection.livelihoods"}',
}

function setup(thread)
  thread:set("tseed", 4242 + math.random(1, 100000))
end

function init(args)
  math.randomseed(tseed)
end

request = function()
  local lat = 14.0 + math.random() * 2.5
  local lon = -92.2 + math.random() * 3.2
  local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
  if needs == 0 then
    local path = string.format(
      "/api/v1/search?near=%.5f,%.5f&category=protection.shelter&limit=10", lat, lon)
    return wrk.format("GET", path, headers)
  end
  local chosen = {}
  for i = 1, needs do chosen[i] = codes[i] end
  -- The box of random points reaches into Mexico, Belize and Lake Izabal, which /match refuses
  -- unless the place is declared outside the country (search takes any point): declare it.
  local body = string.format(
    '{"location": {"latitude": %.5f, "longitude": %.5f, "outside_country": true}, "age": 24,'
    .. ' "gender": "woman",'
    .. ' "languages": ["mam", "spa"], "needs": [%s]}', lat, lon, table.concat(chosen, ", "))
  return wrk.format("POST", "/api/v1/match", headers, body)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH p50_us=%d p95_us=%d rps=%.1f errors=%d\n",
    latency:percentile(50), latency:percentile(95),
    summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
