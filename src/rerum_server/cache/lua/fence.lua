-- Before COMMIT: change every stamp's generation and add this write's fence, expiring after F ms.
-- KEYS: born, stats, then (gen, fence) per stamp.  ARGV: run_id, write token, F ms, generation ttl ms.
local token, expiry = ARGV[2], now + tonumber(ARGV[3])
for i, keys in ipairs(stamp_keys(3)) do
    redis.call('SET', keys[1], token .. ':f' .. i, 'PX', ARGV[4])
    redis.call('ZREMRANGEBYSCORE', keys[2], '-inf', now)
    redis.call('ZADD', keys[2], expiry, token)
end
redis.call('HINCRBY', STATS, 'fences', 1)
return 1
