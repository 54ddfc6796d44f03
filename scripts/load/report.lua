-- wrk script for scripts/load.sh: counts answers by status, checks that
-- every 429 carries Retry-After, and prints one RESULT line of JSON.
-- Environment: WRK_METHOD (default GET), WRK_COOKIE (a session cookie),
-- WRK_BODIES (a file of request bodies, one per line, sent in turn as JSON).
wrk.method = os.getenv("WRK_METHOD") or "GET"
local cookie = os.getenv("WRK_COOKIE")
if cookie then wrk.headers["Cookie"] = cookie end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  missing_retry_after = 0
  bodies = {}
  local path = os.getenv("WRK_BODIES")
  if path then
    for line in io.lines(path) do table.insert(bodies, line) end
    wrk.headers["Content-Type"] = "application/json"
  end
  next_body = 0
end

function request()
  if #bodies > 0 then
    next_body = next_body % #bodies + 1
    return wrk.format(nil, nil, nil, bodies[next_body])
  end
  return wrk.format()
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status == 429 and headers["retry-after"] == nil and headers["Retry-After"] == nil then
    missing_retry_after = missing_retry_after + 1
  end
end

function done(summary, latency, requests)
  local total, missing = {}, 0
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do total[status] = (total[status] or 0) + n end
    missing = missing + t:get("missing_retry_after")
  end
  local parts = {}
  for status, n in pairs(total) do table.insert(parts, string.format('"%d":%d', status, n)) end
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"missing_retry_after":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, missing, table.concat(parts, ",")))
end
