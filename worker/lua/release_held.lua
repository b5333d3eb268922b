-- Close a breaker: forget it, and move every job it held to the delay set, due now (the beat
-- requeues them). Atomic, so a job held at the same moment is never left behind.
-- KEYS[1] breaker hash   KEYS[2] held zset   KEYS[3] probe lock   KEYS[4] delay zset
-- KEYS[5] run of unknown codes   KEYS[6] the set of open breakers
local now = tonumber(ARGV[1])

local held = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, job_id in ipairs(held) do
  redis.call('ZADD', KEYS[4], now, job_id)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
redis.call('SREM', KEYS[6], KEYS[1])
return #held
