-- Move one job to a new state and keep the per-state counters in step, atomically.
-- KEYS[1] job hash, KEYS[2] stats hash
-- ARGV: new state, now, count an attempt (0/1), seconds to keep the job (0 = no expiry),
--       then field/value pairs to set. Returns {previous state, attempts} or nil if no job.
local new_state = ARGV[1]
local now = ARGV[2]
local count_attempt = tonumber(ARGV[3])
local keep_seconds = tonumber(ARGV[4])

local old_state = redis.call('HGET', KEYS[1], 'state')
if not old_state then
  return nil
end
if old_state ~= new_state then
  redis.call('HINCRBY', KEYS[2], old_state, -1)
  redis.call('HINCRBY', KEYS[2], new_state, 1)
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if count_attempt == 1 then
  attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
end
redis.call('HSET', KEYS[1], 'state', new_state, 'updated_at', now)
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if keep_seconds > 0 then
  redis.call('EXPIRE', KEYS[1], keep_seconds)
end
return {old_state, attempts}
