-- One round trip of a cached read.
-- KEYS: born, stats, entry, lease, then (gen, fence) per stamp.
-- ARGV: run_id, token for generations created here, generation ttl ms, lease ms, lease token,
--       fence lifetime ms, the generations of the caller's own copy of the value ('' if none).
-- Returns {1, value, generations} on a hit; {1} on a hit on the caller's copy (its generations are
-- the current ones: the value need not travel); {0, generations, fill} on a miss, fill = 1 (you
-- fill), 2 (another reader holds the lease), 0 (no fill: a write is in flight or the namespace is
-- too young).
-- A hit writes nothing (the client counts hits and misses and ships the counts with count.lua).
local ENTRY, LEASE = KEYS[3], KEYS[4]
local born = tonumber(redis.call('GET', BORN))
if not born then
    born = now
    redis.call('SET', BORN, born, 'NX')
end
local blocked = (now - born) < tonumber(ARGV[6])
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
if not blocked then
    if ARGV[7] == joined then
        return {1}
    end
    local entry = redis.call('HMGET', ENTRY, 'g', 'v')
    if entry[1] == joined then
        return {1, entry[2], joined}
    end
end
if blocked then
    return {0, joined, 0}
end
if redis.call('SET', LEASE, ARGV[5], 'NX', 'PX', ARGV[4]) then
    return {0, joined, 1}
end
return {0, joined, 2}
