-- Book one permit of a strict sliding-window limiter, on the Redis server's clock, and
-- reserve its points in the same step.
--
-- Permits are booked as slot times (microseconds) in a sorted set, always after the last one,
-- so that any limit+1 consecutive slots span at least window+margin: no window of the API
-- ever sees more than `limit` requests, whatever the workers' clocks say.
-- A lane may book at most `horizon` ahead; beyond that it is told when to come back, so a
-- realtime job arriving later books a slot before bulk jobs that did not fit.
--
-- KEYS[1] permits zset   KEYS[2] pause string   KEYS[3] waiters zset of this lane
-- KEYS[4] points hash of today
-- Returns {status, slot_us, now_us}: status 0 booked (send at slot), 1 come back at slot
-- (nothing booked), 2 the day's points are spent (nothing booked).
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local margin = tonumber(ARGV[3])
local horizon = tonumber(ARGV[4])
local member = ARGV[5]
local cost = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])
local points_ttl = tonumber(ARGV[8])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window - margin)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)

local slot = now
local nth = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
if nth[2] and redis.call('ZCARD', KEYS[1]) >= limit then
  slot = math.max(slot, tonumber(nth[2]) + window + margin)
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  slot = math.max(slot, tonumber(last[2]))
end
local paused_until = tonumber(redis.call('GET', KEYS[2]) or '0')
slot = math.max(slot, paused_until)

if slot - now > horizon then
  redis.call('ZADD', KEYS[3], slot - horizon, member)
  return {1, slot - horizon, now}
end

if cap >= 0 then
  local points = redis.call('HMGET', KEYS[4], 'used', 'reserved', 'exhausted')
  local spent = tonumber(points[1] or '0') + tonumber(points[2] or '0')
  if points[3] == '1' or spent + cost > cap then
    return {2, 0, now}
  end
end
if cost > 0 then
  redis.call('HINCRBY', KEYS[4], 'reserved', cost)
  redis.call('EXPIRE', KEYS[4], points_ttl)
end

redis.call('ZADD', KEYS[1], slot, member)
redis.call('PEXPIRE', KEYS[1], math.ceil((slot - now + window + margin) / 1000) + 1000)
if slot > now then
  redis.call('ZADD', KEYS[3], slot, member)
  redis.call('PEXPIRE', KEYS[3], math.ceil((slot - now) / 1000) + 1000)
end
return {0, slot, now}
