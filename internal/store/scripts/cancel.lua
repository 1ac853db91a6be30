-- cancel.lua: cancel a pending or scheduled job (it moves to the canceled set, kept for
-- inspection); with mode 'delete' remove it instead (record, side hashes and key: it is
-- gone, as when purged), and also delete an ended one (failed, succeeded, canceled);
-- with mode 'stop' also ask a running one to stop (its worker hears it on the stop
-- channel, or at its next lease renewal; fail.lua ends it canceled once its func
-- returns an error). Waiters of a canceled or deleted waiting job are told it was
-- canceled. An active job is never deleted here. The job is named by its id, or
-- (ARGV[1] = '') by its schedule key, read here so the lookup and the cancel are one
-- step.
-- KEYS[1] job records  KEYS[2] scheduled  KEYS[3] lane index  KEYS[4] active
-- KEYS[5] failed  KEYS[6] succeeded  KEYS[7] attempts  KEYS[8] errors  KEYS[9] stacks
-- KEYS[10] results  KEYS[11] timings  KEYS[12] schedule keys  KEYS[13] keys of keyed jobs
-- KEYS[14] stop requests  KEYS[15] canceled set  KEYS[16..] lane keys
-- ARGV[1] id ('' to name it by key)  ARGV[2] schedule key  ARGV[3] done channel
-- ARGV[4] 'cancel', 'delete' or 'stop'  ARGV[5] now ms  ARGV[6] stop channel
-- ARGV[7] number of lanes  ARGV[8..] lane members, then canceled jobs kept for ms and
-- kept at most
-- Returns {how, id}: how is "canceled", "deleted", "stopping" (a stop was asked),
-- "active", "finished" (cancel of an ended job) or "notfound"; or {"stale", member}.
local lanes = lane_map(16, 8, tonumber(ARGV[7]))
local id = ARGV[1]
if id == '' then
  id = redis.call('HGET', KEYS[12], ARGV[2])
  if not id then return {'notfound', ''} end
end
local rec = redis.call('HGET', KEYS[1], id)
if not rec then return {'notfound', id} end
local member = record_lane(rec)
local lane = nil
local placed = fair_fields(member)
if member then
  lane = lanes[lane_ref(member)]
  if not lane then return {'stale', lane_ref(member)} end
end
local how = nil
local waiting = false -- pending or scheduled: its waiters are still waiting
if redis.call('ZREM', KEYS[2], id) == 1 then
  waiting = true
elseif placed and fair_remove(lanes, KEYS[3], member, id) then
  waiting = true
elseif lane and not placed and redis.call('ZREM', lane, id) == 1 then
  rescore_lane(KEYS[3], lane, member)
  waiting = true
elseif redis.call('ZSCORE', KEYS[4], id) then
  if ARGV[4] ~= 'stop' then return {'active', id} end
  if redis.call('HSETNX', KEYS[14], id, ARGV[5]) == 1 then redis.call('PUBLISH', ARGV[6], id) end
  return {'stopping', id}
elseif redis.call('ZSCORE', KEYS[5], id) or redis.call('ZSCORE', KEYS[6], id) or redis.call('ZSCORE', KEYS[15], id) then
  if ARGV[4] ~= 'delete' then return {'finished', id} end
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[6], id)
  redis.call('ZREM', KEYS[15], id)
  how = 'deleted'
else
  how = 'deleted' -- a record with no state: remove what is left
end
if waiting then
  if ARGV[4] == 'delete' then how = 'deleted' else how = 'canceled' end
end
release_key(KEYS[12], KEYS[13], id)
redis.call('HDEL', KEYS[14], id)
if how == 'canceled' then
  -- kept for inspection in the canceled set, trimmed by age then count as it grows
  -- (trim.lua does the same on a timer)
  local now, nl = tonumber(ARGV[5]), tonumber(ARGV[7])
  redis.call('ZADD', KEYS[15], now, id)
  forget(drop_expired(KEYS[15], now - tonumber(ARGV[8 + nl]), tonumber(ARGV[9 + nl]), 100),
    KEYS[1], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
else
  forget({id}, KEYS[1], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
end
if waiting then redis.call('PUBLISH', ARGV[3], 'c ' .. id) end
return {how, id}
