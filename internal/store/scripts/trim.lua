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
-- Returns how many jobs were dropped.
local now = tonumber(ARGV[1])
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
