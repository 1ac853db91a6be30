-- stopped.lua: record that a running job asked to stop (cancel.lua, mode 'stop') has
-- stopped: it ends canceled, like a canceled waiting job — removed, its waiters told.
-- KEYS[1] active  KEYS[2] owners  KEYS[3] stop requests  KEYS[4] job records
-- KEYS[5] attempts  KEYS[6] errors  KEYS[7] stacks  KEYS[8] results  KEYS[9] timings
-- KEYS[10] schedule keys  KEYS[11] keys of keyed jobs
-- ARGV[1] worker id  ARGV[2] job id  ARGV[3] done channel
-- Returns 1, or 0 when the worker no longer held the job.
local id = ARGV[2]
local o = redis.call('HGET', KEYS[2], id)
if (not o) or string.sub(o, 1, #ARGV[1] + 1) ~= ARGV[1] .. '|' then return 0 end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
release_key(KEYS[10], KEYS[11], id)
forget({id}, KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
redis.call('PUBLISH', ARGV[3], 'c ' .. id)
return 1
