-- Open a breaker (or keep it open) after an account-level answer; say whether this job is the
-- probe. The first job to open it is the probe, and so is the probe itself when it meets the
-- same wall again; any other job is held. Atomic and safe to run twice for one job (a write
-- sent again after a lost connection), so a job never stops being the probe it was.
-- KEYS[1] breaker hash   KEYS[2] probe lock   KEYS[3] the set of open breakers
-- Returns 1 when this job is the probe (due at probe_at), 0 when it is to be held.
local job_id = ARGV[1]
local reason = ARGV[2]
local code = ARGV[3]
local http_status = ARGV[4]
local now = ARGV[5]
local probe_at = ARGV[6]

local opened = redis.call('HSETNX', KEYS[1], 'since', now)
redis.call('SADD', KEYS[3], KEYS[1])
redis.call('HSET', KEYS[1], 'reason', reason, 'code', code, 'http_status', http_status)
local probe = redis.call('HGET', KEYS[1], 'probe_job')
if opened == 1 or probe == job_id or redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[1], 'probe_at', probe_at, 'probe_job', job_id)
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
