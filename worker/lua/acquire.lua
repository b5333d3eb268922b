-- Book one permit on the Redis server's clock, and reserve its points in the same step.
--
-- The rule every booking keeps: any limit+1 consecutive permits span at least `keep` =
-- window + margin, so no window of the API ever holds more than `limit` requests, whatever
-- the workers' clocks say. A new permit goes after the newest one and at least `keep` after
-- the limit-th newest. Bulk permits are also paced `keep / room` apart; realtime permits only
-- a quarter interval apart, so a callback takes room left in the window at once instead of
-- the next paced slot. For `reserve_for` after a realtime booking, a bulk booking leaves
-- `reserve` permits of every window free, plus as many as a window saw realtime permits on
-- average over the last `reserve_for` (rounded; room = limit - reserved, at least 1): the
-- next callback finds one at once even when callbacks come in numbers, and bulk keeps all
-- but one permit while they come now and then.
-- The margin is the one the workers learn together (observe.lua), `floor` until it is known.
-- A lane may book at most `horizon` ahead (bulk: a few ms, a slot that is free now or about
-- to be); beyond that it is told to come back `horizon` before the slot, so a realtime job
-- that arrives meanwhile books it, and the bulk job that comes back a little late still
-- books the slot itself, not a later one: late wake-ups do not add up over a batch.
--
-- KEYS[1] permits zset (slot per member)  KEYS[2] pause string  KEYS[3] waiters zset of lane
-- KEYS[4] points hash of today   KEYS[5] reservations zset of today ("member/cost" -> expiry)
-- KEYS[6] margin hash   KEYS[7] virtual times of the lane (hash, fair share: account -> the
-- finish of its last permit, '@virtual' -> the start of the last permit booked)
-- KEYS[8] the lane's accounts with a job waiting (zset: account -> lapses at, µs)
-- KEYS[9] recent realtime permits (zset: member -> slot, kept `reserve_for` after it)
-- KEYS[10..] the realtime queues (kombu's lists, one per account)
-- A bulk job (`yield` = 1) books nothing while realtime messages wait in their queues: every
-- worker process is busy then, and the bulk job gives its process to the callback.
-- Fair share (`fair` = 1, bulk): a slot free now goes to the account whose next permit starts
-- first in virtual time (permits taken / weight) among those with a job waiting; any other
-- is told to come back a quarter interval later. An account that was idle starts at the
-- virtual time of the last permit: it comes back with no credit saved up. A waiter that does
-- not come back (its job ended, its worker died) lapses `grace` after its turn.
-- A reservation lives until `hold` after its slot (the longest the request can take): points
-- reserved by a worker that died before settling come back by themselves.
-- Returns {status, slot_us, now_us}: status 0 booked (send at slot), 1 come back at slot
-- (nothing booked), 2 the day's points are spent (nothing booked), 3 give way (nothing booked).
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local member = ARGV[4]
local cost = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local points_ttl = tonumber(ARGV[7])
local hold = tonumber(ARGV[8])
local floor = tonumber(ARGV[9])
local yield = tonumber(ARGV[10])
local slow_start = tonumber(ARGV[11])
local fair = tonumber(ARGV[12])
local account = ARGV[13]
local weight = tonumber(ARGV[14])
local realtime = tonumber(ARGV[15]) == 1
local reserve = tonumber(ARGV[16])
local reserve_for = tonumber(ARGV[17])

-- Until observe.lua has learned a margin, pace at the slow-start margin: the first bookings
-- are made before any round trip is known, and the first window is where a guess meets a 429.
local margin = math.max(floor, tonumber(redis.call('HGET', KEYS[6], 'margin_us') or slow_start))
local interval = math.ceil((window + margin) / limit)
local keep = window + margin

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
if yield == 1 then
  for i = 10, #KEYS do
    if redis.call('LLEN', KEYS[i]) > 0 then
      return {3, now, now}
    end
  end
end

local room = limit
if not realtime and reserve > 0 and reserve_for > 0 then
  local recent = redis.call('ZCOUNT', KEYS[9], now - reserve_for, '+inf')
  if recent > 0 then
    local reserved = reserve + math.floor(recent * keep / reserve_for + 0.5)
    room = math.max(1, limit - reserved)
  end
end
local gap = realtime and math.ceil(interval / 4) or math.ceil(keep / room)
local slot = now
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if newest[2] then
  slot = math.max(slot, tonumber(newest[2]) + gap)
end
local nth_newest = redis.call('ZRANGE', KEYS[1], -room, -room, 'WITHSCORES')
if nth_newest[2] then
  slot = math.max(slot, tonumber(nth_newest[2]) + keep)
end
local paused_until = redis.call('GET', KEYS[2])
if paused_until then
  slot = math.max(slot, tonumber(paused_until))
end

local grace = math.ceil(interval / 2)
local function wait_in_turn(at)
  local lapses = at + grace
  local known = tonumber(redis.call('ZSCORE', KEYS[8], account) or '0')
  if lapses > known then
    redis.call('ZADD', KEYS[8], lapses, account)
  end
  redis.call('PEXPIRE', KEYS[8], math.ceil((lapses - now) / 1000) + 1000)
end

-- Start-time fair queueing: an account's next permit starts at max(its last finish, the
-- start of the last permit booked); the waiting account with the earliest start goes first,
-- and a permit finishes 1 / weight after its start.
local start = 0
if fair == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
  local virtual = tonumber(redis.call('HGET', KEYS[7], '@virtual') or '0')
  local function start_of(name)
    return math.max(tonumber(redis.call('HGET', KEYS[7], name) or '0'), virtual)
  end
  start = start_of(account)
  if slot - now <= horizon then
    for _, other in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
      if other ~= account and start_of(other) < start then
        local back = now + math.ceil(interval / 4)
        wait_in_turn(back)
        return {1, back, now}
      end
    end
  end
end

if slot - now > horizon then
  if fair == 1 then
    wait_in_turn(slot - horizon)
  end
  redis.call('ZADD', KEYS[3], slot - horizon, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  redis.call('PEXPIRE', KEYS[3], math.ceil((slot - now) / 1000) + 1000)
  return {1, slot - horizon, now}
end

redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
if cap >= 0 then
  local points = redis.call('HMGET', KEYS[4], 'used', 'exhausted')
  local spent = tonumber(points[1] or '0')
  for _, held in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
    spent = spent + tonumber(string.match(held, '/(%d+)$'))
  end
  if points[2] == '1' or spent + cost > cap then
    return {2, 0, now}
  end
end
if cost > 0 then
  redis.call('ZADD', KEYS[5], slot + hold, member .. '/' .. cost)
  local keep_ms = math.ceil((slot + hold - now) / 1000) + 1000
  if redis.call('PTTL', KEYS[5]) < keep_ms then
    redis.call('PEXPIRE', KEYS[5], keep_ms)
  end
  redis.call('EXPIRE', KEYS[4], points_ttl)
end

if fair == 1 then
  redis.call('HSET', KEYS[7], '@virtual', start, account, start + 1 / weight)
  redis.call('EXPIRE', KEYS[7], 86400)
end

if realtime and reserve_for > 0 then
  redis.call('ZADD', KEYS[9], slot, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', now - reserve_for)
  redis.call('PEXPIRE', KEYS[9], math.ceil((slot - now + reserve_for) / 1000))
end

-- Trimmed on every booking, so an idle limiter keeps at most `limit` entries: no expiry.
redis.call('ZADD', KEYS[1], slot, member)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep)
if slot > now then
  redis.call('ZADD', KEYS[3], slot, member)
  redis.call('PEXPIRE', KEYS[3], math.ceil((slot - now) / 1000) + 1000)
end
return {0, slot, now}
