-- A 429 was seen: stop booking permits on this limiter key until now + pause, for everyone,
-- and count it. Returns the resume time (microseconds, server clock).
-- KEYS[1] pause string   KEYS[2] stats hash
local pause = tonumber(ARGV[1])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local resume = now + pause

local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if resume > current then
  redis.call('SET', KEYS[1], resume, 'PX', math.ceil(pause / 1000) + 1)
end
redis.call('HINCRBY', KEYS[2], 'http_429', 1)
return resume
