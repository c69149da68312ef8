-- wrk script for bench/query_search.py: POST one request body after another from a file (one body
-- a line), cycling through all of them, so that no single row or index entry is hot; and count the
-- documents in each answer, because latencies of queries that match nothing mean nothing.
-- Usage: wrk ... -s wrk_post_cycle.lua http://127.0.0.1:PORT -- PATH CONTENT_TYPE BODIES_FILE

local threads = {}

-- Runs in the main Lua state once per thread: keep the thread (for done) and give it its own
-- starting offset so the threads do not send the same bodies in lockstep.
function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

local requests = {}
local i = 0
-- Per-thread counters, read by done() through thread:get.
responses = 0
documents = 0
empty = 0
failed = 0

function init(args)
  local path, content_type, file = args[1], args[2], args[3]
  local headers = { ["Content-Type"] = content_type }
  for line in io.lines(file) do
    if line ~= "" then
      -- Formatted once here, not per request: wrk's own thread is the load generator's bottleneck.
      table.insert(requests, wrk.format("POST", path, headers, line))
    end
  end
  if #requests == 0 then
    error("no request bodies in " .. file)
  end
  i = (offset or 0) % #requests
end

function request()
  i = i % #requests + 1
  return requests[i]
end

-- Each document the server returns (a query hit or a search hit) carries exactly one top-level
-- "__rerum" key, and the generated documents have none nested, so counting the key counts hits.
-- wrk records the latency before calling this, so the counting is not measured.
function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    failed = failed + 1
    return
  end
  local hits, from = 0, 1
  while true do
    local at = string.find(body, '"__rerum":', from, true)
    if not at then break end
    hits = hits + 1
    from = at + 10
  end
  documents = documents + hits
  if hits == 0 then
    empty = empty + 1
  end
end

function done(summary, latency, requests)
  local total = { responses = 0, documents = 0, empty = 0, failed = 0 }
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do
      total[key] = total[key] + thread:get(key)
    end
  end
  -- One machine-readable line for query_search.py.
  io.write(string.format("HITS responses=%d documents=%d empty=%d failed=%d\n",
    total.responses, total.documents, total.empty, total.failed))
end
