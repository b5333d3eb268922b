-- A 429 was seen: stop booking permits on this limiter key until now + pause, for everyone,
-- count it, and widen the margin by half at once (multiplicative increase, once per pause: the
-- other requests that were in flight meet the same 429 and must not double it again).
-- KEYS[1] pause string   KEYS[2] stats hash   KEYS[3] margin hash
-- ARGV: pause µs, floor µs, ceiling µs. Returns the resume time (µs, server clock).
local pause = tonumber(ARGV[1])
local floor = tonumber(ARGV[2])
local ceiling = tonumber(ARGV[3])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local resume = now + pause

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current <= now then
  local margin = tonumber(redis.call('HGET', KEYS[3], 'margin_us') or floor)
  local wider = math.min(ceiling, math.floor(math.max(margin, floor) * 1.5))
  redis.call('HSET', KEYS[3], 'aimd_us', wider, 'margin_us', wider, 'calm', 0)
end
if resume > current then
  redis.call('SET', KEYS[1], resume, 'PX', math.ceil(pause / 1000) + 1)
end
redis.call('HINCRBY', KEYS[2], 'http_429', 1)
return resume
