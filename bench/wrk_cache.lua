-- wrk script for bench/cache.py: send prepared requests from a file, one a line, cycling through
-- them. Each line is  METHOD <tab> PATH <tab> AUTH <tab> BODY  (AUTH "1": send the bearer token; BODY
-- may be empty, else it is sent as application/json). One file can mix kinds of requests (the 80/20
-- query/overwrite mix), so the mix is whatever order the file has, the same for every server.
-- Usage: wrk ... -s wrk_cache.lua http://127.0.0.1:PORT -- REQUESTS_FILE THREADS [TOKEN]
--
-- Every thread takes its own contiguous slice of the lines, and cycles through it. cache.py writes
-- the overwrite file so that each slice names its own objects: two threads never write the same
-- object, and within a thread the requests in flight at once are consecutive lines, which name
-- different objects too.

local threads_seen = 0

-- Runs in the main Lua state once per thread, before init: number the threads (as the global
-- "slice" of the thread's own Lua state, which init reads).
function setup(thread)
  thread:set("slice", threads_seen)
  threads_seen = threads_seen + 1
end

local requests = {}
local i = 0

function init(args)
  local file, threads, token = args[1], tonumber(args[2]), args[3]
  local lines = {}
  for line in io.lines(file) do
    if line ~= "" then
      table.insert(lines, line)
    end
  end
  if #lines == 0 or not threads then
    error("usage: -- REQUESTS_FILE THREADS [TOKEN] (no lines in " .. tostring(file) .. "?)")
  end
  local k = slice or 0
  local first = math.floor(k * #lines / threads) + 1
  local last = math.floor((k + 1) * #lines / threads)
  for n = first, last do
    local method, path, auth, body = string.match(lines[n], "^(%u+)\t([^\t]+)\t([01])\t(.*)$")
    if not method then
      error("bad line " .. n .. " in " .. file)
    end
    local headers = {}
    if body ~= "" then
      headers["Content-Type"] = "application/json"
    else
      body = nil
    end
    if auth == "1" then
      headers["Authorization"] = "Bearer " .. token
    end
    -- Formatted once here, not per request: wrk's own threads share the two cores with the server.
    table.insert(requests, wrk.format(method, path, headers, body))
  end
end

function request()
  i = i % #requests + 1
  return requests[i]
end
