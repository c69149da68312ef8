-- Store an entry read from the database, only if nothing it depends on changed since the read began.
-- KEYS: born, stats, entry, lease, entry index (zset), entry sizes (hash), then (gen, fence) per stamp.
-- ARGV: run_id, generations seen before the database read, value, entry ttl ms, lease token.
-- Returns 1 when stored, 0 when refused.
local ENTRY, LEASE, INDEX, SIZES = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local function drop_lease()
    if redis.call('GET', LEASE) == ARGV[5] then
        redis.call('DEL', LEASE)
    end
end
local generations = {}
for i, keys in ipairs(stamp_keys(7)) do
    local generation = redis.call('GET', keys[1])
    if not generation or fenced(keys[2]) then
        redis.call('HINCRBY', STATS, 'refusedFills', 1)
        drop_lease()
        return 0
    end
    generations[i] = generation
end
if table.concat(generations, ' ') ~= ARGV[2] then
    redis.call('HINCRBY', STATS, 'refusedFills', 1)
    drop_lease()
    return 0
end
redis.call('DEL', ENTRY)
redis.call('HSET', ENTRY, 'g', ARGV[2], 'v', ARGV[3])
redis.call('PEXPIRE', ENTRY, ARGV[4])
drop_lease()
-- Bookkeeping for the entries/bytes statistics: the index holds expiry times, the hash sizes.
-- Both expire with the newest entry they track, so volatile-lru may evict them under memory pressure
-- (keys without a TTL cannot be evicted: once they alone exceed maxmemory, every write is refused).
-- An index found missing was evicted or expired with everything it tracked: the bytes start over.
if redis.call('EXISTS', INDEX) == 0 then
    redis.call('DEL', SIZES)
    redis.call('HSET', STATS, 'bytes', 0)
end
local size = string.len(ARGV[3])
local previous = tonumber(redis.call('HGET', SIZES, ENTRY)) or 0
redis.call('HSET', SIZES, ENTRY, size)
redis.call('HINCRBY', STATS, 'bytes', size - previous)
redis.call('ZADD', INDEX, now + tonumber(ARGV[4]), ENTRY)
-- Entries of different read kinds have different TTLs: never shorten the bookkeeping's life below
-- that of a longer-lived entry filled earlier.
if redis.call('PTTL', INDEX) < tonumber(ARGV[4]) then
    redis.call('PEXPIRE', INDEX, ARGV[4])
    redis.call('PEXPIRE', SIZES, ARGV[4])
end
drop_expired(INDEX, SIZES, 32)
redis.call('HINCRBY', STATS, 'fills', 1)
return 1
