-- Learn the limiter's margin from the requests' own round trips, shared by every worker.
-- Requests reach the API later than they leave, by a delay that varies; the pacing must
-- cover that spread. Proactive: the spread is a high percentile of recent round trips minus
-- their minimum. Reactive (AIMD): a 429 doubles the margin at once (see pause.lua); every
-- `decay_every` answers without one narrow it by `decay_step`, never below the spread.
-- margin = clamp(max(floor, spread + floor / 2, aimd), floor, ceiling): floor / 2 is what a
-- permit may be used late (Limiter.lateness_us), the spread comes on top of it.
-- KEYS[1] round-trip samples list (µs, newest first)   KEYS[2] margin hash
-- ARGV: sample µs (or -1: no sample), floor µs, ceiling µs, samples kept, percentile (0..1),
--       decay_every, decay_step µs, slow-start margin µs. Returns the margin µs.
local sample = tonumber(ARGV[1])
local floor = tonumber(ARGV[2])
local ceiling = tonumber(ARGV[3])
local keep = tonumber(ARGV[4])
local percentile = tonumber(ARGV[5])
local decay_every = tonumber(ARGV[6])
local decay_step = tonumber(ARGV[7])
local slow_start = tonumber(ARGV[8])

if sample >= 0 then
  redis.call('LPUSH', KEYS[1], sample)
  redis.call('LTRIM', KEYS[1], 0, keep - 1)
end
local samples = redis.call('LRANGE', KEYS[1], 0, -1)
local spread = 0
local n = #samples
if n >= 5 then
  local sorted = {}
  for i, v in ipairs(samples) do sorted[i] = tonumber(v) end
  table.sort(sorted)
  -- A few samples see less than the whole range: (n + 1) / (n - 1) is the unbiased
  -- correction of a sample range; it fades to nothing as samples accumulate.
  spread = (sorted[math.max(1, math.ceil(n * percentile))] - sorted[1]) * (n + 1) / (n - 1)
  spread = math.floor(spread)
end

local aimd = tonumber(redis.call('HGET', KEYS[2], 'aimd_us') or '0')
local calm = redis.call('HINCRBY', KEYS[2], 'calm', 1)
if calm >= decay_every then
  aimd = math.max(0, aimd - decay_step)
  redis.call('HSET', KEYS[2], 'calm', 0)
end
local margin = math.min(ceiling, math.max(floor, spread + math.floor(floor / 2), aimd))
if n < 5 and aimd == 0 then
  margin = slow_start  -- not learned yet (acquire.lua paces at it too)
end
redis.call('HSET', KEYS[2], 'margin_us', margin, 'spread_us', spread, 'aimd_us', aimd)
return margin
