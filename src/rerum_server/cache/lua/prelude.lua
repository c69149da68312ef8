-- Shared by every script (prepended when the scripts are loaded).
-- KEYS[1] = the namespace's birth key, KEYS[2] = the statistics hash; the script's own keys follow.
-- ARGV[1] = the run_id the client believes it talks to.
-- A script run on another server (restart, failover) must not touch this namespace: the caller
-- re-reads the run_id and starts again in the new namespace.
local server = redis.call('INFO', 'server')
if string.match(server, 'run_id:(%x+)') ~= ARGV[1] then
    return {-1}
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local BORN, STATS = KEYS[1], KEYS[2]

-- Generations and fences of the stamps at KEYS[first], KEYS[first + 1], ... (gen, fence pairs).
local function stamp_keys(first)
    local pairs_ = {}
    for i = first, #KEYS, 2 do
        pairs_[#pairs_ + 1] = {KEYS[i], KEYS[i + 1]}
    end
    return pairs_
end

-- Whether a live write holds a fence on this stamp (expired fences are dropped on the way).
local function fenced(fence_key)
    if redis.call('EXISTS', fence_key) == 0 then
        return false
    end
    redis.call('ZREMRANGEBYSCORE', fence_key, '-inf', now)
    return redis.call('ZCARD', fence_key) > 0
end

-- Forget up to `limit` entries of the statistics' index whose TTL has passed (their bytes too).
local function drop_expired(index, sizes, limit)
    local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, limit)
    for _, key in ipairs(expired) do
        redis.call('HINCRBY', STATS, 'bytes', -(tonumber(redis.call('HGET', sizes, key)) or 0))
        redis.call('HDEL', sizes, key)
        redis.call('ZREM', index, key)
    end
end
