-- beat_fire.lua: fire one tick of a beat entry: claim (entry, tick) and enqueue its job
-- in one step, so that any number of beat replicas fire each tick exactly once.
-- KEYS[1] the tick's claim (a string with a TTL)  KEYS[2] the queue's beat state
-- KEYS[3] job records  KEYS[4] lane index  KEYS[5] lane set  KEYS[6] wake-up list
-- KEYS[7] the entry's lane  KEYS[8] scheduled  KEYS[9] active
-- ARGV[1] now ms  ARGV[2] tick ms  ARGV[3] entry name  ARGV[4] claim TTL ms
-- ARGV[5] id  ARGV[6] lane member  ARGV[7] record  ARGV[8] 'skip' to skip the tick while
-- the entry's previous job waits or runs  ARGV[9] 'advance' to only mark the tick done
-- Returns {"ok", id}, {"skipped", previous id}, {"done"} (a later tick already fired),
-- {"claimed"} (another replica fired it) or {"advanced"}.
local last_f, job_f = ARGV[3] .. '|last', ARGV[3] .. '|job'
local tick = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[2], last_f) or '')
if last and last >= tick then return {'done'} end
if ARGV[9] == 'advance' then
  redis.call('HSET', KEYS[2], last_f, ARGV[2])
  return {'advanced'}
end
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[4]) then return {'claimed'} end
if ARGV[8] == 'skip' then
  local prev = redis.call('HGET', KEYS[2], job_f)
  if prev and (redis.call('ZSCORE', KEYS[9], prev) or redis.call('ZSCORE', KEYS[7], prev) or redis.call('ZSCORE', KEYS[8], prev)) then
    redis.call('HSET', KEYS[2], last_f, ARGV[2])
    return {'skipped', prev}
  end
end
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6] .. '\n' .. ARGV[7])
local score = job_score(now)
local was_empty = redis.call('ZCARD', KEYS[4]) == 0
redis.call('ZADD', KEYS[7], score, ARGV[5])
if index_lane_after_add(KEYS[4], ARGV[6], score) then redis.call('SADD', KEYS[5], ARGV[6]) end
if was_empty then wake(KEYS[6]) end
redis.call('HSET', KEYS[2], last_f, ARGV[2], job_f, ARGV[5])
return {'ok', ARGV[5]}
