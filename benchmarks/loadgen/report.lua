-- wrk script for scripts/benchmark.sh.
--
-- WRK_TARGETS (optional, "host:port,host:port,..."): thread i connects to target
--   ((i - 1) % n) + 1, so one wrk run spreads its connections evenly across several
--   servers (the replicas' own ports) and reports one merged latency histogram.
--   Unset: every thread uses the URL's address.
-- response(): counts responses by status, so non-2xx is exact (wrk's own
--   errors.status only counts status > 399).
-- done(): prints one line "WRK_JSON {...}" with throughput, latency percentiles
--   (microseconds), socket errors and status counts.

local threads = {}
local targets = {}
local next_thread = 0

local spec = os.getenv("WRK_TARGETS")
if spec and spec ~= "" then
  for item in string.gmatch(spec, "[^,%s]+") do
    local host, port = string.match(item, "^(.+):(%d+)$")
    if not host then
      error("WRK_TARGETS entry is not host:port: " .. item)
    end
    local addrs = wrk.lookup(host, port)
    if not addrs or #addrs == 0 then
      error("cannot resolve " .. item)
    end
    table.insert(targets, { name = item, addr = addrs[1] })
  end
end

function setup(thread)
  next_thread = next_thread + 1
  if #targets > 0 then
    local t = targets[((next_thread - 1) % #targets) + 1]
    thread.addr = t.addr
    thread:set("target", t.name)
  end
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local function json_string(s)
  return '"' .. string.gsub(tostring(s), '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local counts = {}
  local non_2xx = 0
  local responses = 0
  for _, thread in ipairs(threads) do
    local st = thread:get("statuses") or {}
    for code, n in pairs(st) do
      counts[code] = (counts[code] or 0) + n
      responses = responses + n
      if code < 200 or code > 299 then
        non_2xx = non_2xx + n
      end
    end
  end
  local parts = {}
  for code, n in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', code, n))
  end
  local used = {}
  for _, thread in ipairs(threads) do
    local t = thread:get("target")
    if t then
      table.insert(used, json_string(t))
    end
  end
  local e = summary.errors
  local duration_s = summary.duration / 1e6
  io.write(string.format(
    'WRK_JSON {"duration_s": %.6f, "requests": %d, "responses": %d, "bytes": %d, '
      .. '"requests_per_s": %.3f, "non_2xx": %d, "status_counts": {%s}, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status_ge_400": %d}, '
      .. '"latency_us": {"min": %d, "mean": %.1f, "stdev": %.1f, "max": %d, '
      .. '"p50": %d, "p75": %d, "p90": %d, "p99": %d, "p99_9": %d}, '
      .. '"threads": %d, "thread_targets": [%s]}\n',
    duration_s, summary.requests, responses, summary.bytes,
    summary.requests / duration_s, non_2xx, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    #threads, table.concat(used, ", ")))
end
