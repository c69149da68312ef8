-- Cluster-wide statistics: the counters, and the live entries after dropping expired ones.
-- KEYS: born, stats, entry index, entry sizes.  ARGV: run_id.
local INDEX, SIZES = KEYS[3], KEYS[4]
drop_expired(INDEX, SIZES, 1000)
return {1, redis.call('HGETALL', STATS), redis.call('ZCARD', INDEX)}
