-- Move one job to a new state and keep the per-state counters and indexes in step, atomically.
-- KEYS[1] job hash, KEYS[2] stats hash, KEYS[3..] the index of every state (zset: job id ->
-- time it entered the state), each named '...:<state>'. The job's account has its own stats
-- hash, KEYS[2]:<account> (keys.account_stats), named from the job's record.
-- ARGV: new state, now, count an attempt (0/1), seconds to keep the job (0 = no expiry),
--       job id, then field/value pairs to set. Returns {previous state, attempts} or nil if no
--       job. A cancelled job stays cancelled: a late writer (a worker, the delay mover) is a
--       no-op, and its caller sees 'cancelled' as the previous state.
local new_state = ARGV[1]
local now = ARGV[2]
local count_attempt = tonumber(ARGV[3])
local keep_seconds = tonumber(ARGV[4])
local job_id = ARGV[5]

local function index_of(state)
  local suffix = ':' .. state
  for i = 3, #KEYS do
    if string.sub(KEYS[i], -#suffix) == suffix then
      return KEYS[i]
    end
  end
  return nil
end

local old_state = redis.call('HGET', KEYS[1], 'state')
if not old_state then
  return nil
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if old_state == 'cancelled' then
  return {old_state, attempts}
end
if old_state ~= new_state then
  local of_account = KEYS[2] .. ':' .. (redis.call('HGET', KEYS[1], 'account') or 'default')
  for _, stats in ipairs({KEYS[2], of_account}) do
    redis.call('HINCRBY', stats, old_state, -1)
    redis.call('HINCRBY', stats, new_state, 1)
  end
  local old_index = index_of(old_state)
  if old_index then
    redis.call('ZREM', old_index, job_id)
  end
end
redis.call('ZADD', index_of(new_state), now, job_id)
if count_attempt == 1 then
  attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
end
redis.call('HSET', KEYS[1], 'state', new_state, 'updated_at', now)
for i = 6, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
if keep_seconds > 0 then
  redis.call('EXPIRE', KEYS[1], keep_seconds)
  -- Jobs that entered this state longer ago than that have expired: the index forgets them.
  local expired = '(' .. string.format('%.6f', tonumber(now) - keep_seconds)
  redis.call('ZREMRANGEBYSCORE', index_of(new_state), '-inf', expired)
end
return {old_state, attempts}
