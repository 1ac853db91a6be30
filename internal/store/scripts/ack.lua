-- ack.lua: record a batch of succeeded jobs held by one worker.
-- KEYS[1] active  KEYS[2] owners  KEYS[3] job records  KEYS[4] attempts
-- KEYS[5] succeeded set (scored by expiry)  KEYS[6] results  KEYS[7] timings
-- KEYS[8] counters  KEYS[9] errors  KEYS[10] stacks
-- ARGV[1] now ms  ARGV[2] worker id  ARGV[3] done channel  ARGV[4] n
-- ARGV[5] max succeeded jobs kept  ARGV[6] '1' to trim the succeeded set in this call
-- then per job, 4 values: id, retention ms, result ('' for none), start ms
-- Returns the ids this worker no longer held (their lease was taken back): not recorded.
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[4])
local ids = {}
for i = 0, n - 1 do ids[#ids + 1] = ARGV[7 + i * 4] end
local owners = redis.call('HMGET', KEYS[2], unpack(ids))
local prefix = ARGV[2] .. '|'
local ok, lost, drop = {}, {}, {}
local done, res, fin = {}, {}, {}
for i = 0, n - 1 do
  local b = 7 + i * 4
  local id = ARGV[b]
  local o = owners[i + 1]
  if o and string.sub(o, 1, #prefix) == prefix then
    ok[#ok + 1] = id
    local keep = tonumber(ARGV[b + 1])
    if keep > 0 then
      done[#done + 1] = now + keep
      done[#done + 1] = id
      fin[#fin + 1] = id
      fin[#fin + 1] = ARGV[b + 3] .. '|' .. ARGV[1]
      if ARGV[b + 2] ~= '' then
        res[#res + 1] = id
        res[#res + 1] = ARGV[b + 2]
      end
    else
      drop[#drop + 1] = id
    end
  else
    lost[#lost + 1] = id
  end
end
if #ok == 0 then return lost end
redis.call('ZREM', KEYS[1], unpack(ok))
redis.call('HDEL', KEYS[2], unpack(ok))
if #done > 0 then
  redis.call('ZADD', KEYS[5], unpack(done))
  redis.call('HSET', KEYS[7], unpack(fin))
  if #res > 0 then redis.call('HSET', KEYS[6], unpack(res)) end
end
forget(drop, KEYS[3], KEYS[4], KEYS[9], KEYS[10], KEYS[6], KEYS[7])
redis.call('HINCRBY', KEYS[8], 'succeeded', #ok)

-- trim (every few calls, as the caller decides): succeeded jobs past their retention,
-- then the oldest beyond the cap
if ARGV[6] ~= '1' then
  redis.call('PUBLISH', ARGV[3], 's ' .. table.concat(ok, ' '))
  return lost
end
local old = redis.call('ZRANGE', KEYS[5], '-inf', now, 'BYSCORE', 'LIMIT', 0, 500)
if #old == 0 then
  local excess = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[5])
  if excess > 0 then old = redis.call('ZRANGE', KEYS[5], 0, math.min(excess, 500) - 1) end
end
if #old > 0 then
  redis.call('ZREM', KEYS[5], unpack(old))
  forget(old, KEYS[3], KEYS[4], KEYS[9], KEYS[10], KEYS[6], KEYS[7])
end
redis.call('PUBLISH', ARGV[3], 's ' .. table.concat(ok, ' '))
return lost
