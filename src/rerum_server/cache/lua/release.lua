-- After COMMIT (whatever its outcome): change every stamp's generation again and drop this write's
-- fence. Idempotent per write token, so a late or repeated release is harmless.
-- KEYS: born, stats, then (gen, fence) per stamp.  ARGV: run_id, write token, generation ttl ms.
local token = ARGV[2]
for i, keys in ipairs(stamp_keys(3)) do
    redis.call('SET', keys[1], token .. ':r' .. i, 'PX', ARGV[3])
    redis.call('ZREM', keys[2], token)
end
return 1
