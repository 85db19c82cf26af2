-- wrk script of bench/ogc_bench.py: requests the paths of a file, one per line, in order.
-- BENCH_PATHS (env): the file. The benchmark writes one file per server and request kind from
-- the same fixed-seed boxes or tiles, so every server is asked the same sequence. Thread i
-- starts at line 1 + (i - 1) * lines / threads and cycles, so threads do not repeat each other.
local file = os.getenv("BENCH_PATHS")
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
local counter = 0

function setup(thread)
  thread:set("start", counter)
  counter = counter + 1
end

function init(args)
  paths = {}
  for line in io.lines(file) do
    if #line > 0 then
      paths[#paths + 1] = line
    end
  end
  position = math.floor(start * #paths / threads)
end

request = function()
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end

done = function(summary, latency, requests)
  io.write(string.format("BENCH p50_us=%d p95_us=%d rps=%.1f errors=%d\n",
    latency:percentile(50), latency:percentile(95),
    summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
