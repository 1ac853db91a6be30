-- requeue_failed.lua: move failed jobs back to pending with a fresh set of retries.
-- KEYS[1] failed  KEYS[2] job records  KEYS[3] lane index  KEYS[4] wake-up list
-- KEYS[5] attempts  KEYS[6] timings  KEYS[7] schedule keys  KEYS[8] keys of keyed jobs
-- KEYS[9..] lane keys
-- ARGV[1] now ms  ARGV[2] number of lanes  ARGV[3..] lane members, then the latest
-- failure time ms to take when no ids are given, then the ids (none: up to 1000 of the
-- oldest jobs failed by that time, so that a job a live worker fails again meanwhile
-- is not taken twice).
-- Returns {"ok", moved} or {"stale", member}.
local nl = tonumber(ARGV[2])
local lanes = lane_map(9, 3, nl)
local ids = {}
for i = 4 + nl, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[3 + nl], 'BYSCORE', 'LIMIT', 0, 1000) end
if #ids == 0 then return {'ok', 0} end
local recs = redis.call('HMGET', KEYS[2], unpack(ids))
local plan = {}
for i, id in ipairs(ids) do
  -- a keyed job stays failed when a newer job waits under its key; else it takes its
  -- key back
  if recs[i] and redis.call('ZSCORE', KEYS[1], id) and not superseded(KEYS[7], KEYS[8], id) then
    local member = record_lane(recs[i])
    if not lanes[member] then return {'stale', member} end
    plan[#plan + 1] = {id, member}
  end
end
local score = job_score(tonumber(ARGV[1]))
for _, p in ipairs(plan) do
  redis.call('ZADD', lanes[p[2]], score, p[1])
  index_lane_after_add(KEYS[3], p[2], score)
  redis.call('ZREM', KEYS[1], p[1])
  redis.call('HDEL', KEYS[5], p[1])
  redis.call('HDEL', KEYS[6], p[1])
end
if #plan > 0 then wake(KEYS[4]) end
return {'ok', #plan}
