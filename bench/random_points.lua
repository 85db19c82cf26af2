-- wrk script: each request asks for a random point over Guatemala's populated area.
-- MODE (env): "knn" = nearest 10 with one category filter; "radius" = everything within 10 km;
-- "health" = GET /health, the ceiling of the server stack without any search work.
local mode = os.getenv("BENCH_MODE") or "knn"
local seed = tonumber(os.getenv("BENCH_SEED") or "42")

function setup(thread)
  thread:set("tseed", seed + math.random(1, 100000))
end

function init(args)
  math.randomseed(tseed)
end

request = function()
  local lat = 14.0 + math.random() * 2.5
  local lon = -92.2 + math.random() * 3.2
  local path
  if mode == "health" then
    path = "/health"
  elseif mode == "radius" then
    path = string.format("/api/v1/search?near=%.5f,%.5f&radius_m=10000&limit=10", lat, lon)
  else
    path = string.format("/api/v1/search?near=%.5f,%.5f&category=protection.shelter&limit=10", lat, lon)
  end
  return wrk.format("GET", path)
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH p50_us=%d p95_us=%d rps=%.1f errors=%d\n",
    latency:percentile(50), latency:percentile(95),
    summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
