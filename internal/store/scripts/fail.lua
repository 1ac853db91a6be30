-- fail.lua: record a failed attempt of one job held by a worker: schedule its retry,
-- or move it to the failed set when it has no retries left.
-- KEYS[1] active  KEYS[2] owners  KEYS[3] job records  KEYS[4] attempts
-- KEYS[5] scheduled  KEYS[6] failed  KEYS[7] errors  KEYS[8] stacks  KEYS[9] counters
-- KEYS[10] timings  KEYS[11] results  KEYS[12] schedule keys  KEYS[13] keys of keyed jobs
-- KEYS[14] stop requests  KEYS[15] canceled set  KEYS[16] limits  KEYS[17] limits' state
-- KEYS[18] wake-up list
-- ARGV[1] now ms  ARGV[2] worker id ('' to skip the ownership check)  ARGV[3] id
-- ARGV[4] 'retry' or 'fail'  ARGV[5] due ms (retry)  ARGV[6] error  ARGV[7] stack
-- ARGV[8] the lease's start ms ('': any lease of the worker)  ARGV[9] schedule channel
-- ARGV[10] done channel
-- ARGV[11] failed jobs kept at most  ARGV[12] failed jobs kept for ms
-- Returns 1, 0 when the worker no longer held the job, 2 when a retry was dropped
-- because a newer job was enqueued under the job's schedule key meanwhile, or 3 when the
-- job had been asked to stop (Client.StopJob): it ends canceled, never retried, even
-- if its worker had not heard of the stop yet.
local id = ARGV[3]
local o = redis.call('HGET', KEYS[2], id)
if ARGV[2] ~= '' and not holds(o, ARGV[2], ARGV[8]) then
  return 0 -- not this lease: a run whose lease was taken back records nothing
end
if o then
  -- the slots its limits counted are free, whatever comes next (a retry waits its turn)
  local rel = {order = {}}
  limits_note(rel, o)
  limits_release(KEYS[16], KEYS[17], KEYS[18], rel)
end
local now = tonumber(ARGV[1])
local started = ARGV[8]
if started == '' then started = ARGV[1] end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('HINCRBY', KEYS[4], id, 1)
redis.call('HSET', KEYS[7], id, ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[8], id, ARGV[7]) else redis.call('HDEL', KEYS[8], id) end
if redis.call('HDEL', KEYS[14], id) == 1 then
  -- asked to stop: canceled, kept for inspection with the error it stopped on
  release_key(KEYS[12], KEYS[13], id)
  redis.call('HSET', KEYS[10], id, started .. '|' .. ARGV[1])
  redis.call('ZADD', KEYS[15], now, id)
  redis.call('PUBLISH', ARGV[10], 'c ' .. id)
  return 3
end
if ARGV[4] == 'retry' and superseded(KEYS[12], KEYS[13], id) then
  forget({id}, KEYS[3], KEYS[4], KEYS[7], KEYS[8], KEYS[11], KEYS[10])
  redis.call('HDEL', KEYS[13], id)
  redis.call('PUBLISH', ARGV[10], 'c ' .. id)
  return 2
end
if ARGV[4] == 'retry' then
  local due = tonumber(ARGV[5])
  local head = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[5], due, id)
  if (not head[1]) or due < tonumber(head[2]) then redis.call('PUBLISH', ARGV[9], ARGV[5]) end
  redis.call('HINCRBY', KEYS[9], 'retried', 1)
  return 1
end
redis.call('ZADD', KEYS[6], now, id)
redis.call('HSET', KEYS[10], id, started .. '|' .. ARGV[1])
release_key(KEYS[12], KEYS[13], id, true)
redis.call('HINCRBY', KEYS[9], 'failed', 1)
-- trim the dead letters by age, then by count
local old = drop_expired(KEYS[6], now - tonumber(ARGV[12]), tonumber(ARGV[11]), 500)
if #old > 0 then
  forget(old, KEYS[3], KEYS[4], KEYS[7], KEYS[8], KEYS[11], KEYS[10])
  redis.call('HDEL', KEYS[13], unpack(old)) -- trimmed keyed jobs drop their jkey entry
end
redis.call('PUBLISH', ARGV[10], 'f ' .. id)
return 1
