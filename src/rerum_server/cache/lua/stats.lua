-- Cluster-wide statistics: the counters, and the live entries after dropping expired ones.
-- KEYS: born, stats, entry index, entry sizes.  ARGV: run_id.
local INDEX, SIZES = KEYS[3], KEYS[4]
local expired = redis.call('ZRANGEBYSCORE', INDEX, '-inf', now, 'LIMIT', 0, 1000)
for _, key in ipairs(expired) do
    redis.call('HINCRBY', STATS, 'bytes', -(tonumber(redis.call('HGET', SIZES, key)) or 0))
    redis.call('HDEL', SIZES, key)
    redis.call('ZREM', INDEX, key)
end
return {1, redis.call('HGETALL', STATS), redis.call('ZCARD', INDEX)}
