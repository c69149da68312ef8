-- Add a worker's counts (hits, misses, bypasses, refused writes ...) to the cluster-wide statistics.
-- KEYS: born, stats.  ARGV: run_id, then pairs of (counter, amount).
for i = 2, #ARGV - 1, 2 do
    redis.call('HINCRBY', STATS, ARGV[i], ARGV[i + 1])
end
return 1
