-- Move the leads one producer validated onto the nightly staging list, all in one step.
-- KEYS[1] this producer's list   KEYS[2] the nightly staging list   KEYS[3] the move's receipt
-- ARGV: leads the producer pushed, seconds the receipt is kept. Returns the leads staged now,
-- or -1 (nothing moved) when the producer's list expired. The receipt tells a producer whose
-- reply was lost that the move ran (its own list being gone would not, after a failover).
-- An empty target takes the list whole (RENAME, O(1)); otherwise the leads are appended a page
-- at a time, and Redis serves nobody else until all of them are: about 1.4 s per million leads.
local pushed = tonumber(ARGV[1])
local receipt_ttl = tonumber(ARGV[2])

local PAGE = 1000 -- below Lua's limit on unpack()

if redis.call('LLEN', KEYS[1]) ~= pushed then
  return -1
end
redis.call('SET', KEYS[3], '1', 'EX', receipt_ttl)
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('PERSIST', KEYS[2])
  return pushed
end
for first = 0, pushed - 1, PAGE do
  redis.call('RPUSH', KEYS[2], unpack(redis.call('LRANGE', KEYS[1], first, first + PAGE - 1)))
end
redis.call('UNLINK', KEYS[1])
return redis.call('LLEN', KEYS[2])
