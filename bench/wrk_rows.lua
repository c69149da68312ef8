-- wrk script for GET /row/{id}: each request asks for the next id, cycling through all rows,
-- so the load touches the whole table instead of one hot key.
-- Usage: wrk ... -s wrk_rows.lua http://127.0.0.1:PORT -- ROW_COUNT
-- Ids must match ROW_ID_FORMAT in stack_apps/common.py ("row-%06d").

local threads_seen = 0

-- Runs in the main Lua state once per thread: give each thread its own starting offset so
-- the threads do not ask for the same ids in lockstep.
function setup(thread)
  thread:set("offset", threads_seen * 7919)
  threads_seen = threads_seen + 1
end

local count = 10000
local i = 0

function init(args)
  count = tonumber(args[1]) or count
  i = (offset or 0) % count
end

function request()
  i = (i + 1) % count
  return wrk.format("GET", string.format("/row/row-%06d", i))
end
