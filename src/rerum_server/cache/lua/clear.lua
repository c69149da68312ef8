-- Make every entry unreachable in O(1): every entry depends on the stamp "all", whose generation
-- changes here. The bookkeeping is dropped with UNLINK (freed in the background).
-- KEYS: born, stats, entry index, entry sizes, generation of "all".  ARGV: run_id, new generation, ttl ms.
local INDEX, SIZES, ALL = KEYS[3], KEYS[4], KEYS[5]
redis.call('ZREMRANGEBYSCORE', INDEX, '-inf', now)
local cleared = redis.call('ZCARD', INDEX)
local bytes = tonumber(redis.call('HGET', STATS, 'bytes')) or 0
redis.call('SET', ALL, ARGV[2], 'PX', ARGV[3])
redis.call('UNLINK', INDEX, SIZES)
redis.call('HSET', STATS, 'bytes', 0)
return {1, cleared, bytes}
