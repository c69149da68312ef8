-- One round trip of a cached read.
-- KEYS: born, stats, entry, lease, then (gen, fence) per stamp.
-- ARGV: run_id, token for generations created here, generation ttl ms, lease ms, lease token,
--       endpoint name, 1 to count this attempt in the statistics, fence lifetime ms, then pairs of
--       (counter, amount) that happened while Redis could not be told (bypasses, refused writes ...).
-- Returns {1, value} on a hit; {0, generations, fill} on a miss, fill = 1 (you fill), 2 (another
-- reader holds the lease), 0 (no fill: a write is in flight or the namespace is too young).
local ENTRY, LEASE = KEYS[3], KEYS[4]
local counted = ARGV[7] == '1'
for i = 9, #ARGV - 1, 2 do
    redis.call('HINCRBY', STATS, ARGV[i], ARGV[i + 1])
end
local born = tonumber(redis.call('GET', BORN))
if not born then
    born = now
    redis.call('SET', BORN, born, 'NX')
end
local blocked = (now - born) < tonumber(ARGV[8])
local generations = {}
for i, keys in ipairs(stamp_keys(5)) do
    local generation = redis.call('GET', keys[1])
    if not generation then
        -- An absent generation is never compared as a value: mint a fresh one, so this is a miss.
        generation = ARGV[2] .. ':' .. i
        redis.call('SET', keys[1], generation, 'PX', ARGV[3])
    end
    generations[i] = generation
    if fenced(keys[2]) then
        blocked = true
    end
end
local joined = table.concat(generations, ' ')
local entry = redis.call('HMGET', ENTRY, 'g', 'v')
if not blocked and entry[1] == joined then
    if counted then
        redis.call('HINCRBY', STATS, 'hits', 1)
        redis.call('HINCRBY', STATS, ARGV[6] .. ':hits', 1)
    end
    return {1, entry[2]}
end
if counted then
    redis.call('HINCRBY', STATS, 'misses', 1)
    redis.call('HINCRBY', STATS, ARGV[6] .. ':misses', 1)
end
if blocked then
    return {0, joined, 0}
end
if redis.call('SET', LEASE, ARGV[5], 'NX', 'PX', ARGV[4]) then
    return {0, joined, 1}
end
return {0, joined, 2}
