-- enqueue_keyed.lua: store one job under a schedule key. At most one job per key waits
-- (scheduled or pending): the one waiting is replaced, or kept (ARGV[7] = '1').
-- KEYS[1] job records  KEYS[2] lane index  KEYS[3] lane set  KEYS[4] scheduled
-- KEYS[5] wake-up list KEYS[6] schedule keys  KEYS[7] the new job's lane
-- KEYS[8] the waiting job's lane (the new job's when there is none)
-- KEYS[9] attempts  KEYS[10] errors  KEYS[11] stacks  KEYS[12] results  KEYS[13] timings
-- ARGV[1] now ms  ARGV[2] id  ARGV[3] lane member  ARGV[4] record  ARGV[5] due ms (0: now)
-- ARGV[6] key  ARGV[7] '1' to keep a waiting job  ARGV[8] the id the caller read under
-- the key ('' for none)  ARGV[9] that job's lane member ('' for none)
-- ARGV[10] schedule channel  ARGV[11] done channel
-- Returns {"ok", id}, {"kept", waiting id}, or {"retry"} when the key moved since the
-- caller read it (it reads again and calls again).
local cur = redis.call('HGET', KEYS[6], ARGV[6])
if (cur or '') ~= ARGV[8] then return {'retry'} end
if cur then
  local waiting = redis.call('ZSCORE', KEYS[4], cur)
  if not waiting and ARGV[9] ~= '' then waiting = redis.call('ZSCORE', KEYS[8], cur) end
  if waiting then
    if ARGV[7] == '1' then return {'kept', cur} end
    if redis.call('ZREM', KEYS[4], cur) == 0 then
      redis.call('ZREM', KEYS[8], cur)
      rescore_lane(KEYS[2], KEYS[8], ARGV[9])
    end
    forget({cur}, KEYS[1], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13])
    redis.call('PUBLISH', ARGV[11], 'c ' .. cur) -- its waiters learn it was replaced
  end
end
local now, due = tonumber(ARGV[1]), tonumber(ARGV[5])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3] .. '\n' .. ARGV[4])
if due > now then
  local head = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[4], due, ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
  if (not head[1]) or due < tonumber(head[2]) then redis.call('PUBLISH', ARGV[10], ARGV[5]) end
else
  local score = job_score(now)
  local was_empty = redis.call('ZCARD', KEYS[2]) == 0
  redis.call('ZADD', KEYS[7], score, ARGV[2])
  if index_lane_after_add(KEYS[2], ARGV[3], score) then redis.call('SADD', KEYS[3], ARGV[3]) end
  if was_empty then wake(KEYS[5]) end
end
redis.call('HSET', KEYS[6], ARGV[6], ARGV[2])
return {'ok', ARGV[2]}
