-- Make the jobs a producer staged visible, all in one step: each job's record, its idempotency
-- key, its message on its queue (or its place in the delay set), and the per-state counters.
-- KEYS[1] staged jobs (list, one JSON entry a job)   KEYS[2] their payloads (hash, id -> text)
-- KEYS[3] their messages (hash, id -> kombu's message)   KEYS[4] stats hash   KEYS[5] delay zset
-- KEYS[6] receipt of this commit   KEYS[7], KEYS[8] index of the queued, of the delayed jobs
-- KEYS[9] their task-sent events (hash, id -> kombu's message; empty with events off), published
-- on ARGV[5] (kombu's fanout topic) for each job queued: Flower learns of exactly these.
-- KEYS[10] stats hash of the batch's account
-- An entry: {id, pos, record = job hash key, fields = {name, value, ...}, key = idempotency
-- key or '', value = 'id fingerprint', queue, due = unix time or ''}.
-- An input of one chunk is not staged: its entries are ARGV[6..], each carrying its payload,
-- message and event ('' for none) itself, and KEYS[1..3] and KEYS[9] are not read.
-- Returns {'ok', dropped id, id that holds its key, ...}: a job whose key is held already (by
-- another producer's job meanwhile, for the same body, or by an earlier job of this batch) is
-- dropped. Returns {'conflict', pos, key, job id, ...} when a key was taken for another body,
-- or {'missing'} when the staging area expired: then nothing is written. Every check comes
-- before the first write, so the script never stops half-way.
local staged = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local receipt_ttl = tonumber(ARGV[4])
local events_channel = ARGV[5]

local PAGE = 500 -- entries decoded at a time, to bound the script's memory
local inline = #ARGV > 5

local function each_job(visit)
  if inline then
    for i = 6, #ARGV do
      visit(cjson.decode(ARGV[i]))
    end
    return
  end
  for first = 0, staged - 1, PAGE do
    for _, raw in ipairs(redis.call('LRANGE', KEYS[1], first, first + PAGE - 1)) do
      visit(cjson.decode(raw))
    end
  end
end

local function owner_of(stored)
  local space = string.find(stored, ' ', 1, true)
  if not space then
    return stored, ''
  end
  return string.sub(stored, 1, space - 1), string.sub(stored, space + 1)
end

for i = 1, inline and 0 or 3 do
  local size = redis.call(i == 1 and 'LLEN' or 'HLEN', KEYS[i])
  if size ~= staged then
    return {'missing'}
  end
end

local conflicts = {'conflict'}
each_job(function(job)
  local stored = job.key ~= '' and redis.call('GET', job.key)
  if not stored then
    return
  end
  local owner, hash = owner_of(stored)
  local _, mine = owner_of(job.value)
  if hash ~= '' and hash ~= mine then
    table.insert(conflicts, job.pos)
    table.insert(conflicts, job.key)
    table.insert(conflicts, owner)
  end
end)
if #conflicts > 1 then
  return conflicts
end

local counts, reply = {}, {'ok'}
each_job(function(job)
  if job.key ~= '' then
    local stored = redis.call('GET', job.key)
    if stored then
      table.insert(reply, job.id)
      table.insert(reply, (owner_of(stored)))
      return
    end
    redis.call('SET', job.key, job.value, 'EX', window)
  end
  local state, index = 'queued', KEYS[7]
  if job.due ~= '' and tonumber(job.due) > now then
    state, index = 'delayed', KEYS[8]
    redis.call('ZADD', KEYS[5], job.due, job.id)
  else
    redis.call('LPUSH', job.queue, job.message or redis.call('HGET', KEYS[3], job.id))
    local event = events_channel ~= '' and (job.event or redis.call('HGET', KEYS[9], job.id))
    if event and event ~= '' then
      redis.call('PUBLISH', events_channel, event)
    end
  end
  redis.call('ZADD', index, now, job.id)
  local payload = job.payload or redis.call('HGET', KEYS[2], job.id)
  redis.call('HSET', job.record, 'payload', payload, 'state', state, unpack(job.fields))
  counts[state] = (counts[state] or 0) + 1
end)
for state, count in pairs(counts) do
  redis.call('HINCRBY', KEYS[4], state, count)
  redis.call('HINCRBY', KEYS[10], state, count)
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[9])
redis.call('SET', KEYS[6], table.concat(reply, ' '), 'EX', receipt_ttl)
return reply
