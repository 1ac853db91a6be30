-- beat_fire.lua: fire one tick of a beat entry: claim it and enqueue its job in one
-- step, so that any number of beat replicas fire each tick exactly once.
-- The claim is the entry's progress mark, <entry>|last in the queue's beat hash: the
-- latest tick done (fired, skipped, or passed over by a catch-up policy or a change of
-- the entry). It only grows: a tick is fired only when it is later than the mark, and
-- moves the mark to itself in the same step, so no tick fires twice, and an entry costs
-- one field however many ticks it fires. Callers send an entry's ticks oldest first.
-- KEYS[1] the queue's beat hash  KEYS[2] job records  KEYS[3] lane index
-- KEYS[4] wake-up list  KEYS[5] the entry's lane  KEYS[6] scheduled  KEYS[7] active
-- ARGV[1] now ms  ARGV[2] tick ms  ARGV[3] entry name  ARGV[4] id  ARGV[5] lane member
-- ARGV[6] record  ARGV[7] 'skip' to skip the tick while the entry's previous job waits
-- or runs  ARGV[8] 'advance' to only mark the tick (and every earlier one) done
-- Returns {"ok", id}, {"skipped", previous id}, {"done"} (this tick or a later one is
-- done already) or {"advanced"}.
local last_f, job_f = ARGV[3] .. '|last', ARGV[3] .. '|job'
local tick = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], last_f) or '')
if last and last >= tick then return {'done'} end
redis.call('HSET', KEYS[1], last_f, ARGV[2])
if ARGV[8] == 'advance' then return {'advanced'} end
if ARGV[7] == 'skip' then
  local prev = redis.call('HGET', KEYS[1], job_f)
  if prev and (redis.call('ZSCORE', KEYS[7], prev) or redis.call('ZSCORE', KEYS[5], prev) or redis.call('ZSCORE', KEYS[6], prev)) then
    return {'skipped', prev}
  end
end
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5] .. '\n' .. ARGV[6])
local score = job_score(now)
local was_empty = redis.call('ZCARD', KEYS[3]) == 0
redis.call('ZADD', KEYS[5], score, ARGV[4])
index_lane_after_add(KEYS[3], ARGV[5], score)
if was_empty then wake(KEYS[4]) end
redis.call('HSET', KEYS[1], job_f, ARGV[4])
return {'ok', ARGV[4]}
