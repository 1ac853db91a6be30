-- cancel.lua: cancel a pending or scheduled job, or (mode 'delete') also delete a
-- failed or succeeded one. An active job is never touched.
-- KEYS[1] job records  KEYS[2] scheduled  KEYS[3] lane index  KEYS[4] active
-- KEYS[5] failed  KEYS[6] succeeded  KEYS[7] attempts  KEYS[8] errors  KEYS[9] stacks
-- KEYS[10] results  KEYS[11] timings  KEYS[12] the job's lane  KEYS[13] schedule keys
-- ARGV[1] id  ARGV[2] lane member  ARGV[3] done channel  ARGV[4] 'cancel' or 'delete'
-- ARGV[5] the job's schedule key ('' for none), released
-- Returns "canceled", "deleted", "active", "finished" (cancel of an ended job) or "notfound".
local id = ARGV[1]
local how = nil
if redis.call('ZREM', KEYS[2], id) == 1 then
  how = 'canceled'
elseif redis.call('ZREM', KEYS[12], id) == 1 then
  rescore_lane(KEYS[3], KEYS[12], ARGV[2])
  how = 'canceled'
elseif redis.call('ZSCORE', KEYS[4], id) then
  return 'active'
elseif redis.call('ZSCORE', KEYS[5], id) or redis.call('ZSCORE', KEYS[6], id) then
  if ARGV[4] ~= 'delete' then return 'finished' end
  redis.call('ZREM', KEYS[5], id)
  redis.call('ZREM', KEYS[6], id)
  how = 'deleted'
elseif redis.call('HEXISTS', KEYS[1], id) == 1 then
  how = 'deleted' -- a record with no state: remove what is left
else
  return 'notfound'
end
forget({id}, KEYS[1], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
if ARGV[5] ~= '' and redis.call('HGET', KEYS[13], ARGV[5]) == id then redis.call('HDEL', KEYS[13], ARGV[5]) end
if how == 'canceled' then redis.call('PUBLISH', ARGV[3], 'c ' .. id) end
return how
