-- Should this bulk job, waiting for a slot, give its process to a callback? One bulk job per
-- callback message waiting in the realtime queues takes a claim that lives `claim_ms`, time
-- for the process it frees to take the message: two callbacks free two processes, not one,
-- and not every waiting bulk job.
-- KEYS[1] claims zset (member -> expiry, server µs)   KEYS[2..] the realtime queues
-- ARGV[1] this job's member   ARGV[2] claim_ms
-- Returns 1 when this job is to give way, else 0.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local waiting = 0
for i = 2, #KEYS do
  waiting = waiting + redis.call('LLEN', KEYS[i])
end
if waiting == 0 then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= waiting then
  return 0
end
local claim_ms = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + claim_ms * 1000, ARGV[1])
redis.call('PEXPIRE', KEYS[1], claim_ms)
return 1
