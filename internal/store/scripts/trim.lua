-- trim.lua: drop ended jobs past their keeping: succeeded jobs past their retention,
-- failed and canceled jobs older than their age, else the oldest beyond each cap; at
-- most 500 of each per call. Workers run it on a timer, so an idle queue is trimmed too
-- (acknowledgements and failures also trim as they go).
-- KEYS[1] succeeded set  KEYS[2] failed set  KEYS[3] job records  KEYS[4] attempts
-- KEYS[5] errors  KEYS[6] stacks  KEYS[7] results  KEYS[8] timings
-- KEYS[9] keys of keyed jobs  KEYS[10] canceled set  KEYS[11] stop requests
-- KEYS[12] active set
-- ARGV[1] now ms  ARGV[2] succeeded jobs kept at most  ARGV[3] failed jobs kept for ms
-- ARGV[4] failed jobs kept at most  ARGV[5] canceled jobs kept for ms
-- ARGV[6] canceled jobs kept at most
-- KEYS[13] fair key use  KEYS[14] pending jobs per fair key  KEYS[15] fair virtual times
-- (lib.lua, fair_add): 200 fields of the use hash a call, from a cursor kept in the
-- last, lose the keys that have no pending job and were not served for 15 minutes.
-- Returns how many jobs were dropped.
local now = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[13]) == 1 then
  local r = redis.call('HSCAN', KEYS[13], redis.call('HGET', KEYS[15], 'sw') or '0', 'COUNT', 200)
  local drop = {}
  local fields = r[2]
  for i = 1, #fields, 2 do
    local kind, key = string.match(fields[i], '^([su]):(.*)$')
    if kind and not redis.call('ZSCORE', KEYS[14], key) then
      local at = tonumber(string.match(fields[i + 1], '^([^|]+)') or '')
      if (not at) or now - at > 900000 then drop[#drop + 1] = fields[i] end
    end
  end
  if #drop > 0 then redis.call('HDEL', KEYS[13], unpack(drop)) end
  redis.call('HSET', KEYS[15], 'sw', r[1])
end
local function trim(set, older_than, cap)
  local old = drop_expired(set, older_than, cap, 500)
  if #old > 0 then
    forget(old, KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
    redis.call('HDEL', KEYS[9], unpack(old)) -- failed keyed jobs keep their jkey entry until here
  end
  return #old
end
-- stop requests of jobs no longer running: a stop asked as its job succeeded (the ack
-- leaves it, to keep the hot path free of it; every other end clears its own). The
-- hash holds only such races and the jobs now stopping, so reading it whole is cheap.
for _, id in ipairs(redis.call('HKEYS', KEYS[11])) do
  if not redis.call('ZSCORE', KEYS[12], id) then redis.call('HDEL', KEYS[11], id) end
end
return trim(KEYS[1], now, tonumber(ARGV[2])) + trim(KEYS[2], now - tonumber(ARGV[3]), tonumber(ARGV[4])) +
  trim(KEYS[10], now - tonumber(ARGV[5]), tonumber(ARGV[6]))
